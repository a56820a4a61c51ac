"""``lpgnet bench``: how heavy LPGNet is next to its peers, every figure from one run.

For each model (LPGNet, SDT, GRU, Transformer, Linear) in two settings --

- ``paper``: every model at d = 768 with the paper's input sizes (768-d text, 768-d
  speech), so parameter and FLOP ratios compare architectures at equal width;
- ``iemocap``: each model exactly as its ``configs/iemocap/<name>.yaml`` builds it on the
  IEMOCAP bundle's inputs (384-d MiniLM text, 4 speech logits) --

it measures trainable parameters; forward FLOPs per dialogue (PyTorch's
``FlopCounterMode``); CPU inference latency for one dialogue of N utterances (batch 1,
eval mode, inference mode, median of timed repeats after warm-up); throughput in
utterances/s at batch 32 (dialogues of 50 utterances); peak memory of that batch
(resident-set growth in a fresh process); and the wall time of one training epoch over
IEMOCAP's training dialogue lengths (random features of the right sizes: time depends on
shapes, not values). Models are measured one after another in the same process, so the
LPGNet/SDT ratios share the machine's state even when absolute figures are noisy.
"""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ..config import RunConfig, load_config
from ..data.batching import TensorDialogue, collate
from ..files import write_json
from ..registry import build_model, model_config_class
from ..training.loop import train_epoch
from ..training.plots import plt, save_figure
from .envinfo import describe, environment, matmul_gflops

MODELS = ("lpgnet", "sdt", "gru", "transformer", "linear")
LENGTHS = (10, 25, 50, 100, 200)
PAPER_DIMS = {"text": 768, "audio": 768}
IEMOCAP_DIMS = {"text": 384, "audio": 4}
NUM_CLASSES = 4
THROUGHPUT_BATCH, THROUGHPUT_LEN = 32, 50


def run_config(name: str, setting: str, configs_dir: Path) -> RunConfig:
    """The run config a model is benchmarked with: its IEMOCAP config (training recipe,
    and in the ``iemocap`` setting its size), with input sizes filled in."""
    path = configs_dir / f"{name}.yaml"
    cfg = load_config(path) if path.exists() else RunConfig(model=model_config_class(name)())
    dims = PAPER_DIMS if setting == "paper" else IEMOCAP_DIMS
    model = cfg.model if setting == "iemocap" else model_config_class(name)()
    if setting == "paper" and hasattr(model, "d_model"):
        model.d_model = 768
        if hasattr(model, "heads"):
            model.heads = 8
    if hasattr(model, "speakers"):  # speaker embeddings as the model's IEMOCAP config has them
        model.speakers = copy.deepcopy(cfg.model.speakers)
    model.d_text, model.d_audio, model.num_classes = dims["text"], dims["audio"], NUM_CLASSES
    cfg.model = model
    return cfg.validate()


def dialogue(n: int, dims: dict[str, int], rng: np.random.Generator) -> TensorDialogue:
    return TensorDialogue(
        torch.from_numpy(rng.standard_normal((n, dims["text"]), dtype=np.float32)),
        torch.from_numpy(rng.standard_normal((n, dims["audio"]), dtype=np.float32)),
        torch.from_numpy(rng.integers(0, NUM_CLASSES, n)),
        torch.from_numpy(np.arange(n) % 2),  # two speakers taking turns
    )


def forward(model: torch.nn.Module, batch: Any) -> Any:
    return model(batch.text, batch.audio, batch.mask, **batch.model_kwargs(model.config))


def median_seconds(fn: Callable[[], Any], min_time: float = 0.3, min_reps: int = 5, max_reps: int = 200) -> float:
    """Median wall time of ``fn`` after two warm-up calls; repeats for ``min_time`` s."""
    fn(), fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < min_time and len(times) < max_reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def count_flops(model: torch.nn.Module, batch: Any) -> int:
    # The Transformer layer's fused inference kernel is invisible to the counter: count
    # the same computation through the regular path.
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            forward(model, batch)
        return int(counter.get_total_flops())
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)


def onnxruntime_latency(model: torch.nn.Module, batches: dict[int, Any]) -> dict[str, float] | None:
    """The same batch-1 latencies through onnxruntime (CPU, same thread count), or None
    when onnxruntime is not installed or the model does not export."""
    try:
        import onnxruntime as ort

        from ..serving.export import parity, write_onnx
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 4  # a model that fails the parity check is reported as None, not logged
        try:
            graph, names, _ = write_onnx(model, path)
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            if parity(graph, session, model, names, lengths=(1, 10)) > 1e-4:
                return None
        except Exception:  # noqa: BLE001 -- a model that does not export has no ONNX figure
            return None
    out = {}
    for n, b in batches.items():
        feed = {
            "text": b.text.numpy(),
            "audio": b.audio.numpy(),
            "mask": b.mask.numpy(),
            "speakers": b.speakers.numpy(),
        }
        feed = {k: feed[k] for k in names}
        out[str(n)] = 1000 * median_seconds(lambda f=feed: session.run(None, f))
    return out


def _memory_probe(name: str, setting: str, configs_dir: str, threads: int, queue: Any) -> None:
    """In a fresh process: resident-memory growth from building the model and running one
    batch-32 forward (the process's own baseline subtracted)."""
    torch.set_num_threads(threads)
    cfg = run_config(name, setting, Path(configs_dir))
    dims = PAPER_DIMS if setting == "paper" else IEMOCAP_DIMS
    rng = np.random.default_rng(0)
    batch = collate([dialogue(THROUGHPUT_LEN, dims, rng) for _ in range(THROUGHPUT_BATCH)])
    base = _reset_peak_kib()
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    with torch.inference_mode():
        forward(model, batch)
    queue.put((_peak_kib() - base) / 1024.0)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"/proc/self/status: no {field}")


def _reset_peak_kib() -> int:
    """Reset the peak-RSS mark to the current RSS and return it (Linux). A process's
    rusage peak starts at its parent's at fork, so it cannot be read without a reset."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_kib("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # elsewhere: best effort


def _peak_kib() -> int:
    try:
        return _status_kib("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_memory_mb(name: str, setting: str, configs_dir: Path) -> float | None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_memory_probe, args=(name, setting, str(configs_dir), torch.get_num_threads(), queue))
    proc.start()
    proc.join(300)
    return queue.get() if proc.exitcode == 0 and not queue.empty() else None


def training_lengths(data_path: Path) -> tuple[list[int], str]:
    """Dialogue lengths of IEMOCAP's training sessions (1-4), or a stand-in if absent."""
    if data_path.exists():
        counts: dict[str, int] = {}
        sessions: dict[str, Any] = {}
        with data_path.open(encoding="utf-8") as f:
            for line in f:
                u = json.loads(line)
                counts[u["dialog_id"]] = counts.get(u["dialog_id"], 0) + 1
                sessions[u["dialog_id"]] = u.get("session")
        lengths = [n for d, n in counts.items() if sessions[d] != 5]
        return lengths, f"{data_path} (sessions 1-4, {len(lengths)} dialogues, {sum(lengths)} utterances)"
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 110, 120).tolist()
    return lengths, f"{data_path} not found: 120 dialogues of 20-110 utterances instead"


def epoch_seconds(cfg: RunConfig, model: torch.nn.Module, lengths: list[int], dims: dict[str, int]) -> float:
    rng = np.random.default_rng(0)
    items = [dialogue(n, dims, rng) for n in lengths]
    cfg = copy.deepcopy(cfg)
    cfg.train.progress = False
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    train_epoch(model, items[: 3 * cfg.train.batch_size], cfg, opt, rng)  # warm-up: a few batches
    t0 = time.perf_counter()
    train_epoch(model, items, cfg, opt, rng)
    return time.perf_counter() - t0


def bench_model(
    name: str, setting: str, configs_dir: Path, lengths: list[int], epoch_lengths: list[int] | None, memory: bool
) -> dict[str, Any]:
    cfg = run_config(name, setting, configs_dir)
    dims = PAPER_DIMS if setting == "paper" else IEMOCAP_DIMS
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    rng = np.random.default_rng(0)
    one = {n: collate([dialogue(n, dims, rng)]) for n in lengths}
    big = collate([dialogue(THROUGHPUT_LEN, dims, rng) for _ in range(THROUGHPUT_BATCH)])
    out: dict[str, Any] = {
        "d_model": getattr(cfg.model, "d_model", None),
        "input_dims": dims,
        "params": model.num_parameters(),
        "params_inference": model.num_parameters(inference_only=True),
        "flops": {str(n): count_flops(model, one[n]) for n in lengths},
    }
    with torch.inference_mode():
        out["latency_ms"] = {str(n): 1000 * median_seconds(lambda b=one[n]: forward(model, b)) for n in lengths}
        sec = median_seconds(lambda: forward(model, big), min_reps=3, min_time=0.5)
    out["throughput_utt_s"] = THROUGHPUT_BATCH * THROUGHPUT_LEN / sec
    out["latency_ms_onnxruntime"] = onnxruntime_latency(model, one)
    out["peak_mem_mb"] = peak_memory_mb(name, setting, configs_dir) if memory else None
    if epoch_lengths is not None:
        out["train_epoch_s"] = epoch_seconds(cfg, model, epoch_lengths, dims)
        out["train_batch_size"] = cfg.train.batch_size
    return out


def bench_cuda(models: list[str], configs_dir: Path, lengths: list[int]) -> dict[str, Any] | None:
    """The paper-size latency table on the GPU (synchronised timings), when there is one."""
    if not torch.cuda.is_available():
        return None
    dev = torch.device("cuda")
    result: dict[str, Any] = {"device": torch.cuda.get_device_name(0), "models": {}}
    for name in models:
        cfg = run_config(name, "paper", configs_dir)
        torch.manual_seed(0)
        model = build_model(cfg.model).to(dev).eval()
        rng = np.random.default_rng(0)
        lat = {}
        for n in lengths:
            b = collate([dialogue(n, PAPER_DIMS, rng)])
            b = type(b)(*(t.to(dev) for t in (b.text, b.audio, b.mask, b.labels, b.speakers)))

            def step(b: Any = b, model: torch.nn.Module = model) -> None:
                forward(model, b)
                torch.cuda.synchronize()

            with torch.inference_mode():
                lat[str(n)] = 1000 * median_seconds(step)
        result["models"][name] = {"latency_ms": lat}
    return result


def run_bench(
    out: str | Path,
    models: list[str] | None = None,
    lengths: list[int] | None = None,
    threads: int | None = None,
    configs_dir: str | Path = "configs/iemocap",
    data_path: str | Path = "../shared/data/iemocap/utterances.jsonl",
    plot: str | Path | None = None,
    memory: bool = True,
    train_epoch: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure, write the JSON (and the PNG plot) and return the report."""
    if threads:
        torch.set_num_threads(threads)
    models = list(models or MODELS)
    lengths = list(lengths or LENGTHS)
    configs = Path(configs_dir)
    epoch_lengths, epoch_data = training_lengths(Path(data_path)) if train_epoch else (None, None)
    env = environment() | {"load_average_start": os.getloadavg()}
    start = time.perf_counter()
    # The machine's matmul throughput before and after (also the warm-up, so the first
    # model timed does not pay for the thread pool's start-up and the clock ramp).
    env["matmul_gflops_start"] = matmul_gflops()
    report: dict[str, Any] = {
        "env": env,
        "settings": {
            "paper": f"every model at d = 768, inputs text {PAPER_DIMS['text']} / speech {PAPER_DIMS['audio']}",
            "iemocap": f"each model as {configs}/<name>.yaml builds it, inputs text {IEMOCAP_DIMS['text']} / speech {IEMOCAP_DIMS['audio']}",
            "latency": "batch 1, eval + inference mode, median of timed repeats after 2 warm-up calls",
            "throughput": f"batch {THROUGHPUT_BATCH} dialogues of {THROUGHPUT_LEN} utterances",
            "peak_mem_mb": "resident-set growth of a fresh process building the model and running the throughput batch",
            "train_epoch": epoch_data,
        },
    }
    for key, setting in (("models", "paper"), ("models_iemocap", "iemocap")):
        report[key] = {}
        for name in models:
            t0 = time.perf_counter()
            report[key][name] = bench_model(name, setting, configs, lengths, epoch_lengths, memory)
            m = report[key][name]
            log(
                f"{setting:8s} {name:12s} {m['params']:>11,} params  {m['latency_ms'].get('50', float('nan')):8.2f} ms @ N=50  "
                f"{m['throughput_utt_s']:9.0f} utt/s"
                + (f"  epoch {m['train_epoch_s']:.1f} s" if "train_epoch_s" in m else "")
                + f"  ({time.perf_counter() - t0:.0f} s)"
            )
    report["ratios"] = ratios(report)
    report["cuda"] = bench_cuda(models, configs, lengths)
    report["env"]["load_average_end"] = os.getloadavg()
    report["env"]["matmul_gflops_end"] = matmul_gflops()
    report["env"]["bench_seconds"] = time.perf_counter() - start
    write_json(out, report)
    if plot:
        plot_bench(report, plot)
    return report


def ratios(report: dict[str, Any]) -> dict[str, Any]:
    """LPGNet over SDT, per setting (the paper's lightness claims, as measured here)."""
    out: dict[str, Any] = {}
    for key in ("models", "models_iemocap"):
        models = report.get(key, {})
        if "lpgnet" not in models or "sdt" not in models:
            continue
        a, b = models["lpgnet"], models["sdt"]
        r = {"params_lpgnet_over_sdt": a["params"] / b["params"]}
        if "50" in a["latency_ms"] and "50" in b["latency_ms"]:
            r["latency50_lpgnet_over_sdt"] = a["latency_ms"]["50"] / b["latency_ms"]["50"]
        if "50" in a["flops"] and b["flops"].get("50"):
            r["flops50_lpgnet_over_sdt"] = a["flops"]["50"] / b["flops"]["50"]
        out[key] = r
    return out


def plot_bench(report: dict[str, Any], path: str | Path) -> None:
    """``lpgnet bench``: latency against dialogue length, and parameters, per model."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    for name, m in report["models"].items():
        n = sorted(int(k) for k in m["latency_ms"])
        ax1.plot(n, [m["latency_ms"][str(k)] for k in n], marker="o", label=name)
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("utterances in the dialogue (batch 1)")
    ax1.set_ylabel("CPU latency, ms (median)")
    env = report["env"]
    ax1.set_title(f"d = 768, inputs 768/768; {env['threads']} threads, torch {env['torch']}", fontsize=9)
    ax1.legend()
    names = list(report["models"])
    x = np.arange(len(names))
    for offset, (key, label) in zip(
        (-0.2, 0.2), (("models", "d = 768 (paper size)"), ("models_iemocap", "IEMOCAP configs"))
    ):
        if key in report:
            ax2.bar(x + offset, [report[key][n]["params"] / 1e6 for n in names], width=0.4, label=label)
    ax2.set_xticks(x, names)
    ax2.set_ylabel("trainable parameters, millions")
    ax2.legend()
    save_figure(fig, Path(path))


def render(data: dict[str, Any], file: Path) -> list[str]:
    """``lpgnet bench`` JSON -> one table per setting, the LPGNet/SDT ratios and the plot."""
    env = data["env"]
    load = env.get("load_average_start")
    gflops = (env.get("matmul_gflops_start"), env.get("matmul_gflops_end"))
    lines = [
        describe(env)
        + (f"; 1-minute load average {load[0]:.2f} at the start" if load else "")
        + (
            f"; fp32 matmul {gflops[0]:.0f} GFLOP/s at the start, {gflops[1]:.0f} at the end"
            if None not in gflops
            else ""
        )
        + f"; the whole benchmark took {env.get('bench_seconds', float('nan')):.0f} s.",
        "",
    ]
    for key, title in (
        ("models", "paper size: " + data["settings"]["paper"]),
        ("models_iemocap", "IEMOCAP configs: " + data["settings"]["iemocap"]),
    ):
        models = data.get(key) or {}
        if not models:
            continue
        lengths = list(next(iter(models.values()))["latency_ms"])
        head = ["model", "d", "parameters", "GFLOP / dialogue (N = 50)"] + [f"ms @ N = {n}" for n in lengths]
        head += ["utt/s (batch 32)", "peak MB", "train epoch, s"]
        lines += [f"**{title}**", "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
        for name, m in models.items():
            flops = m["flops"].get("50")
            cells = [
                name,
                str(m["d_model"] or "–"),
                f"{m['params']:,}",
                f"{flops / 1e9:.3f}" if flops is not None else "–",
            ]
            cells += [f"{m['latency_ms'][n]:.2f}" for n in lengths]
            cells += [
                f"{m['throughput_utt_s']:,.0f}",
                f"{m['peak_mem_mb']:.0f}" if m.get("peak_mem_mb") is not None else "–",
                f"{m['train_epoch_s']:.1f}" if m.get("train_epoch_s") is not None else "–",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        ort_rows = [(name, m) for name, m in models.items() if m.get("latency_ms_onnxruntime")]
        if ort_rows:
            lines += [
                "",
                "onnxruntime (CPU, same threads) against eager PyTorch, batch 1, ms:",
                "",
                "| model | " + " | ".join(f"N = {n}: eager / onnxruntime" for n in lengths) + " |",
                "|---" * (len(lengths) + 1) + "|",
            ]
            for name, m in ort_rows:
                ort = m["latency_ms_onnxruntime"]
                lines.append(
                    f"| {name} | "
                    + " | ".join(
                        f"{m['latency_ms'][n]:.2f} / {ort[n]:.2f} ({m['latency_ms'][n] / ort[n]:.1f}x)" for n in lengths
                    )
                    + " |"
                )
            missing = [name for name, m in models.items() if not m.get("latency_ms_onnxruntime")]
            if missing:
                lines += [
                    "",
                    f"No onnxruntime figure for {', '.join(missing)}: its ONNX export does not pass the "
                    "parity check (PyTorch's Transformer layer traces with a fixed length).",
                ]
            if "lpgnet" in dict(ort_rows) and "50" in lengths:
                m = models["lpgnet"]
                speed = m["latency_ms"]["50"] / m["latency_ms_onnxruntime"]["50"]
                lines += [
                    "",
                    f"Target: LPGNet's onnxruntime latency at N = 50 at least 2x lower than eager -- "
                    f"{speed:.1f}x, {'met' if speed >= 2 else '**missed**'}.",
                ]
        r = data.get("ratios", {}).get(key)
        if r:
            lines += [
                "",
                "LPGNet / SDT: parameters "
                + f"{r['params_lpgnet_over_sdt']:.2f}x"
                + (f", FLOPs at N = 50 {r['flops50_lpgnet_over_sdt']:.2f}x" if "flops50_lpgnet_over_sdt" in r else "")
                + (
                    f", CPU latency at N = 50 {r['latency50_lpgnet_over_sdt']:.2f}x"
                    if "latency50_lpgnet_over_sdt" in r
                    else ""
                )
                + ".",
            ]
            met = lambda ok: "met" if ok else "**missed**"  # noqa: E731
            lines += [
                "",
                f"Targets: fewer parameters than SDT -- {met(r['params_lpgnet_over_sdt'] < 1)}; "
                f"CPU latency at N = 50 at most 0.5x SDT's -- {met(r.get('latency50_lpgnet_over_sdt', 9) <= 0.5)}.",
            ]
        lines.append("")
    if data["settings"].get("train_epoch"):
        lines += [f"Epoch data: {data['settings']['train_epoch']}.", ""]
    cuda = data.get("cuda")
    if cuda:
        lengths = list(next(iter(cuda["models"].values()))["latency_ms"])
        lines += [
            f"**GPU ({cuda['device']}), paper size, synchronised latency, ms**",
            "",
            "| model | " + " | ".join(f"N = {n}" for n in lengths) + " |",
            "|---" * (len(lengths) + 1) + "|",
        ]
        lines += [
            f"| {name} | " + " | ".join(f"{m['latency_ms'][n]:.2f}" for n in lengths) + " |"
            for name, m in cuda["models"].items()
        ]
        lines.append("")
    else:
        lines += ["No GPU on the machine that ran it: CPU figures only.", ""]
    png = file.with_suffix(".png")
    if png.exists():
        lines += [f"![latency and parameters](../{png.as_posix()})", ""]
    return lines
