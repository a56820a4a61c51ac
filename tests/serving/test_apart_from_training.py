"""Serving stays apart from training: a process that only predicts never loads the
training loop, the experiment runner or the benchmarks (import-linter checks the imports
in CI; this checks what a real process loads, lazy imports included)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_predictor_and_the_service_loads_no_training_code():
    code = (
        "import sys, lpgnet.serving.predict, lpgnet.serving.serve, lpgnet.serving.export\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('lpgnet.'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "lpgnet.serving.predict" in loaded and "lpgnet.models.lpgnet.model" in loaded
    banned = [m for m in loaded if m.split(".")[1] in ("training", "experiments", "benchmarks")]
    assert not banned, banned
