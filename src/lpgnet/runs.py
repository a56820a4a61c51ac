"""A run directory, read and written in one place.

What ``lpgnet train`` writes and every other command reads::

    config.yaml          the fully resolved config (input sizes and classes filled from the data)
    model.safetensors    weights + the model config (lpgnet.models.checkpoint)
    log.csv              one row per epoch
    *.png                training curves, confusion matrix
    metrics.json         written last: its presence marks a finished run

Training, evaluation, experiments, prediction, the service and export all go through
:class:`RunDir`, so a missing file or a half-written run gets the same clear error
everywhere, and a run is only ever marked finished after everything else is on disk.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig, dump_config, load_config
from .errors import ConfigError, RunDirError
from .files import write_json, write_text
from .models.checkpoint import WEIGHTS_NAME, load_pretrained, save_pretrained

CONFIG_FILE = "config.yaml"
LOG_FILE = "log.csv"
FINISHED_MARKER = "metrics.json"


class RunDir:
    """One run directory (see the module doc)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ------------------------------------------------------------------ reading

    @property
    def finished(self) -> bool:
        return (self.path / FINISHED_MARKER).exists()

    def require(self, *names: str) -> RunDir:
        """Refuse a missing directory, or one without ``names`` (default: config and weights)."""
        if not self.path.is_dir():
            raise RunDirError(f"{self.path}: run directory not found")
        for name in names or (CONFIG_FILE, WEIGHTS_NAME):
            if not (self.path / name).exists():
                raise RunDirError(f"{self.path}: {name} missing (not a finished lpgnet run?)")
        return self

    def config(self, overrides: list[str] | None = None) -> RunConfig:
        """The run's config; ``overrides`` may change ``data.*`` only (the model comes
        from the checkpoint, so a ``model.*`` override would be silently ignored)."""
        bad = [o for o in overrides or [] if not o.strip().startswith("data.")]
        if bad:
            raise ConfigError(
                f"--set {bad[0]!r}: evaluate can only change data.* fields (the model comes from the checkpoint)"
            )
        return load_config(self.path / CONFIG_FILE, overrides)

    def config_text(self) -> str | None:
        """The saved config.yaml as text, or None when it is missing or unreadable."""
        try:
            return (self.path / CONFIG_FILE).read_text(encoding="utf-8")
        except OSError:
            return None

    def metrics(self) -> dict[str, Any]:
        """metrics.json, or a clear error when the run is not finished or the file is damaged."""
        path = self.path / FINISHED_MARKER
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
        except OSError:
            raise RunDirError(f"{path}: not found (not a finished lpgnet run?)") from None
        except ValueError as exc:
            raise RunDirError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(metrics, dict):
            raise RunDirError(f"{path}: expected a JSON object")
        return metrics

    def labels(self) -> list[str]:
        """The class names, in index order, as the run's test metrics record them."""
        try:
            return list(self.metrics()["test"]["labels"])
        except (KeyError, TypeError):
            raise RunDirError(f"{self.path / FINISHED_MARKER}: no test.labels (the label names)") from None

    def model(self, map_location: str = "cpu") -> torch.nn.Module:
        return load_pretrained(self.path, map_location)

    # ------------------------------------------------------------------ writing

    def check_writable(self, overwrite: bool) -> RunDir:
        """Refuse to replace a finished run without ``overwrite`` (before any work is done)."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"{self.path}: exists and is not a directory")
        if self.finished and not overwrite:
            raise RunDirError(
                f"{self.path}: holds a finished run ({FINISHED_MARKER} exists); pass --overwrite to replace it"
            )
        return self

    def write(
        self,
        cfg: RunConfig,
        model: torch.nn.Module,
        metrics: dict[str, Any],
        history: list[dict[str, float]],
        figures: Callable[[Path], None] | None = None,
    ) -> None:
        """Write the whole run. A run being replaced first loses its finished marker, so
        a crash part-way never leaves a directory that looks finished but mixes old and
        new files; every file is written atomically; metrics.json comes last."""
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / FINISHED_MARKER).unlink(missing_ok=True)
        write_text(self.path / CONFIG_FILE, dump_config(cfg))
        save_pretrained(model, self.path)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
        write_text(self.path / LOG_FILE, buf.getvalue())
        if figures is not None:
            figures(self.path)
        self.write_metrics(metrics)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json(self.path / FINISHED_MARKER, metrics)


def check_out_dir(out_dir: str | Path | None, overwrite: bool) -> Path | None:
    """``RunDir(out_dir).check_writable(overwrite)`` for an optional output directory."""
    if out_dir is None:
        return None
    return RunDir(out_dir).check_writable(overwrite).path
