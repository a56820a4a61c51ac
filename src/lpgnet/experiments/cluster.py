"""Experiments on a cluster: each run still to train becomes a job, through submitit.

    lpgnet experiment --config C --seeds 10 --folds 1,2,3,4,5 --out DIR --executor slurm \\
        --slurm-partition gpu --gpus 1 --cpus 8 --time-min 60
    lpgnet report --manifest experiments/iemocap.yaml --out docs/RESULTS.md --run --executor slurm ...

Why submitit: it is the small (pure Python) library that turns a Python call into a Slurm
job (``sbatch``) and brings its result back, job arrays included; the academic clusters
that train ERC models run Slurm; and its ``local`` executor runs the very same jobs as
processes on this machine, which is what CI tests. Ray would bring a cluster runtime of
its own (80 MB) for the same fan-out of independent runs.

The experiment itself does not change: the parent process loads the data first (so text
features are computed once, into the shared cache, before any job starts), submits one
job per (fold, seed) that has no finished run directory and no run in ``--reuse``, waits,
and then reads every run directory and writes the summary as a local experiment would.
An interrupted experiment resubmits only what is missing. Jobs run in the parent's
working directory, so relative data paths mean the same thing there (a shared file
system, as on every Slurm cluster).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..errors import ConfigError, RunDirError


def train_job(cfg: RunConfig, run_dir: str, device: str | None, cwd: str) -> str:
    """One run, inside a job: the parent's working directory, one ``lpgnet train``."""
    os.chdir(cwd)
    from ..training.loop import train

    train(cfg, out_dir=run_dir, overwrite=True, device=device, log=lambda m: print(m, flush=True))
    return run_dir


@dataclass
class SubmititExecutor:
    """Runs to train as submitit jobs: ``cluster`` "slurm", or "local" (processes here)."""

    cluster: str
    folder: Path  # submitit's job files and each job's stdout / stderr
    parameters: dict[str, Any] = field(default_factory=dict)  # timeout_min, slurm_partition, gpus_per_node, ...

    @property
    def name(self) -> str:
        return f"submitit ({self.cluster}; job logs in {self.folder})"

    def run(self, runs: list[tuple[RunConfig, Path]], device: str | None) -> None:
        try:
            import submitit
        except ImportError:
            raise ConfigError("--executor needs submitit: pip install 'lpgnet[cluster]'") from None
        executor = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
        executor.update_parameters(name="lpgnet", **self.parameters)
        cwd = str(Path.cwd())
        with executor.batch():  # one Slurm job array
            jobs = [executor.submit(train_job, cfg, str(run_dir), device, cwd) for cfg, run_dir in runs]
        failed = []
        for job, (_, run_dir) in zip(jobs, runs):
            try:
                job.result()
            except Exception as exc:  # noqa: BLE001 - submitit re-raises the job's failure, whatever it was
                failed.append(f"{run_dir} (job {job.job_id}: {' '.join(str(exc).split())[-300:]})")
        if failed:
            raise RunDirError(
                f"{len(failed)} of {len(jobs)} jobs failed, first: {failed[0]}; their logs are in {self.folder}; "
                "rerun the same command to resubmit only the unfinished runs"
            )


def make_executor(
    kind: str | None,
    folder: str | Path,
    partition: str | None = None,
    gpus: int = 0,
    cpus: int = 1,
    time_min: int = 60,
    mem_gb: float | None = None,
) -> SubmititExecutor | None:
    """The executor ``--executor`` names (None: train here)."""
    if kind is None:
        return None
    if kind not in ("slurm", "local"):
        raise ConfigError(f"--executor {kind}: expected 'slurm' or 'local'")
    params: dict[str, Any] = {"timeout_min": time_min, "cpus_per_task": cpus}
    if gpus:
        params["gpus_per_node"] = gpus
    if mem_gb:
        params["mem_gb"] = mem_gb
    if partition:
        if kind != "slurm":
            raise ConfigError("--slurm-partition: only with --executor slurm")
        params["slurm_partition"] = partition
    if kind == "local":  # processes on this machine, all at once: for tests and small sweeps
        params = {k: v for k, v in params.items() if k in ("timeout_min", "gpus_per_node")}
    return SubmititExecutor(kind, Path(folder), params)
