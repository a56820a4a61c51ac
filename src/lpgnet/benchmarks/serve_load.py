"""Load test of ``lpgnet serve``: requests/s and p50/p99 latency over a bounded run.

Starts the service on 127.0.0.1 (a free port, loopback only) in a subprocess, then
``--clients`` threads post whole conversations of ``--utterances`` utterances (random
feature vectors of the run's sizes) back to back for ``--seconds``, and reports
throughput, latency percentiles, every status code seen, and the throughput of each
10-second window ("held" when the last window keeps at least 80% of the first).

    python -m lpgnet.benchmarks.serve_load --out benchmarks/results/serve_load.json            # trains a quick run first
    python -m lpgnet.benchmarks.serve_load --run runs/iemocap/main/lpgnet/seed-0 --seconds 60

Without ``--run`` it trains the built-in synthetic preset (about 20 s) into a temporary
folder, so it runs from a clean clone.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..files import write_json
from ..serving.predict import Predictor
from .envinfo import describe, environment


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    import httpx  # the [test] extra; only the measurement needs it, not the page's rendering

    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"the service exited with status {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit("the service did not start in time")


def main(argv: list[str] | None = None) -> None:
    import httpx  # the [test] extra; only the measurement needs it, not the page's rendering

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="run directory (default: train the synthetic preset into a temporary folder)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--utterances", type=int, default=20, help="utterances per conversation")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the service (per worker)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes of the service")
    parser.add_argument("--out", default="benchmarks/results/serve_load.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run
        if run is None:
            run = str(Path(tmp) / "run")
            subprocess.run(
                [sys.executable, "-m", "lpgnet.cli", "train", "--out", run],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        predictor = Predictor.from_run(run)
        rng = np.random.default_rng(0)
        body = {
            "utterances": [
                {
                    predictor.fields[m]: rng.normal(size=predictor.dims[m]).round(5).tolist()
                    for m in predictor.modalities
                }
                | {"speaker": "AB"[i % 2]}
                for i in range(args.utterances)
            ]
        }
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "lpgnet.cli", "serve", "--run", run, "--port", str(port)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        if args.workers > 1:
            cmd += ["--workers", str(args.workers)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
        try:
            wait_ready(url, proc)
            results: list[tuple[float, float, int]] = []  # (finish time, latency s, status)
            lock = threading.Lock()
            start = time.perf_counter()
            stop = start + args.seconds

            def client() -> None:
                with httpx.Client(base_url=url, timeout=30) as c:
                    while time.perf_counter() < stop:
                        t0 = time.perf_counter()
                        try:
                            status = c.post("/predict", json=body).status_code
                        except httpx.HTTPError:
                            status = 0  # connection failure
                        t1 = time.perf_counter()
                        with lock:
                            results.append((t1 - start, t1 - t0, status))

            workers = [threading.Thread(target=client) for _ in range(args.clients)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    lat = sorted(r[1] for r in results)
    codes: dict[str, int] = {}
    for _, _, s in results:
        codes[str(s)] = codes.get(str(s), 0) + 1
    windows = [sum(1 for r in results if k * 10 <= r[0] < (k + 1) * 10) / 10 for k in range(int(args.seconds // 10))]
    report = {
        "env": environment(),
        "run": args.run or "synthetic preset (trained for this test)",
        "seconds": args.seconds,
        "clients": args.clients,
        "workers": args.workers,
        "utterances_per_request": args.utterances,
        "requests": len(results),
        "requests_per_s": len(results) / args.seconds,
        "utterances_per_s": len(results) * args.utterances / args.seconds,
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "status_codes": codes,
        "server_errors": sum(n for c, n in codes.items() if c.startswith("5") or c == "0"),
        "requests_per_s_by_10s": windows,
        "throughput_held": bool(windows) and windows[-1] >= 0.8 * windows[0],
    }
    print(
        f"{report['requests']} requests in {args.seconds:.0f} s: {report['requests_per_s']:.1f} req/s "
        f"({report['utterances_per_s']:.0f} utterances/s), p50 {report['p50_ms']:.1f} ms, p99 {report['p99_ms']:.1f} ms; "
        f"status {codes}; per 10 s: {[round(w, 1) for w in windows]}; held: {report['throughput_held']}"
    )
    write_json(args.out, report)
    print(f"written to {args.out}")


def render(data: dict[str, Any], file: Path) -> list[str]:
    """This benchmark's JSON as Markdown lines for the results page."""
    env = data["env"]
    lines = [
        describe(env) + f"; run: {data['run']}.",
        "",
        "| seconds | clients | workers | utterances / request | requests/s | utterances/s | p50 ms | p99 ms | status codes | 5xx or failed | requests/s per 10 s | held |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {data['seconds']:.0f} | {data['clients']} | {data.get('workers', 1)} | {data['utterances_per_request']} | {data['requests_per_s']:.1f} | "
        f"{data['utterances_per_s']:.0f} | {data['p50_ms']:.1f} | {data['p99_ms']:.1f} | "
        f"{', '.join(f'{k}: {v}' for k, v in data['status_codes'].items())} | {data['server_errors']} | "
        f"{', '.join(f'{w:.0f}' for w in data['requests_per_s_by_10s'])} | {'yes' if data['throughput_held'] else '**no**'} |",
        "",
        f"Target: zero 5xx over the bounded load test and throughput held -- "
        f"{'met' if data['server_errors'] == 0 and data['throughput_held'] else '**missed**'}.",
        "",
    ]
    return lines


if __name__ == "__main__":
    main()
