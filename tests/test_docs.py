"""The docs run: every fenced Python example in the README and docs/ is executed, in a
fresh folder holding a finished demo run (``runs/demo``), as a reader would paste it.
An example that cannot run here is marked ``<!-- not run: reason -->`` on the line
before its fence, and that reason is reported as the skip."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from lpgnet import load_config, train

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "RESULTS.md")]
BLOCK = re.compile(r"(?:<!-- not run: (?P<why>[^>]*) -->\n)?```python\n(?P<code>.*?)```", re.S)


def examples() -> list:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in BLOCK.finditer(text):
            line = text.count("\n", 0, m.start("code"))
            found.append(pytest.param(m.group("code"), m.group("why"), id=f"{page.name}:{line}"))
    return found


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with a finished (quick) demo run where the README's first command puts one."""
    folder = tmp_path_factory.mktemp("docs")
    quick = ["train.epochs=2", "train.progress=false"]
    train(load_config("synthetic", quick), out_dir=folder / "runs" / "demo", log=lambda m: None)
    return folder


def test_the_docs_have_python_examples():
    assert len(examples()) >= 2


@pytest.mark.parametrize("code,why", examples())
def test_python_example_runs(code, why, workdir):
    if why:
        pytest.skip(why)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
