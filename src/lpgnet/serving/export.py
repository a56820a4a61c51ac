"""``lpgnet export``: a trained run as an ONNX model for onnxruntime.

The graph takes one float tensor per modality the model uses (``text`` B×N×d_text,
``audio`` B×N×d_audio), the utterance ``mask`` (B×N bool, True = real utterance) and,
for a model with speaker embeddings, ``speakers`` (B×N int64); batch and dialogue length
are dynamic. Outputs: ``probs`` (B×N×C class probabilities, zero at padding) and, for gated models
(LPGNet, SDT), ``gates`` (B×N×M multimodal gate weights, modalities in the model's
order). Label names, modalities and input sizes are stored in the ONNX metadata.

Every export is checked before it is kept: onnxruntime and eager PyTorch must agree on
the probabilities within ``tolerance`` on dialogues of several lengths with padding;
a failed check leaves no file behind.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, RunDirError
from ..files import atomic_path
from ..models.base import embeds_speakers
from ..runs import RunDir

OPSET = 17
CHECK_LENGTHS = (1, 10, 50, 200)


class _Graph(torch.nn.Module):
    """The exported function: named inputs in, probabilities (and gates) out."""

    def __init__(self, model: torch.nn.Module, inputs: list[str], gates: bool) -> None:
        super().__init__()
        self.model, self.inputs, self.gates = model, inputs, gates

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        given = dict(zip(self.inputs, args))
        out = self.model(
            given.get("text"),
            given.get("audio"),
            given["mask"],
            **({"speakers": given["speakers"]} if "speakers" in given else {}),
        )
        probs = out.logits.softmax(-1) * given["mask"].unsqueeze(-1).to(out.logits.dtype)  # 0 at padding
        return (probs, out.alpha) if self.gates else (probs,)


def graph_inputs(model: torch.nn.Module) -> list[str]:
    return list(model.config.modalities) + ["mask"] + (["speakers"] if embeds_speakers(model.config) else [])


def example(model: torch.nn.Module, names: list[str], batch: int, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs of the right sizes; the second dialogue is padded after half its length."""
    g = torch.Generator().manual_seed(seed)
    dims = {"text": model.config.d_text, "audio": model.config.d_audio}
    mask = torch.ones(batch, n, dtype=torch.bool)
    if batch > 1:
        mask[1, n // 2 + 1 :] = False
    out: dict[str, torch.Tensor] = {}
    for name in names:
        if name in dims:
            out[name] = torch.randn(batch, n, dims[name], generator=g)
        elif name == "mask":
            out[name] = mask
        else:
            out[name] = torch.arange(n).remainder(2).expand(batch, n).contiguous()
    return out


def export_onnx(
    run: str | Path, out: str | Path, overwrite: bool = False, tolerance: float = 1e-4, labels: list[str] | None = None
) -> dict[str, Any]:
    """Export the run's model to ``out``; returns what was exported and the parity check."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError("ONNX export needs onnx and onnxruntime: pip install 'lpgnet[onnx]'") from None
    out = Path(out)
    if out.exists() and not overwrite:
        raise RunDirError(f"{out}: exists; pass --overwrite to replace it")
    run_dir = RunDir(run)
    model = run_dir.model().eval()
    if labels is None:
        labels = run_dir.labels()
    with atomic_path(out) as tmp:
        graph, names, outputs = write_onnx(model, tmp, labels)
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        worst = parity(graph, session, model, names)
        if worst > tolerance:
            raise RunDirError(f"{out}: onnxruntime and PyTorch differ by {worst:.2e} > {tolerance:g}; not written")
    return {
        "out": str(out),
        "inputs": names,
        "outputs": outputs,
        "labels": labels,
        "max_abs_diff": worst,
        "opset": OPSET,
    }


def write_onnx(
    model: torch.nn.Module, path: str | Path, labels: list[str] | None = None
) -> tuple[torch.nn.Module, list[str], list[str]]:
    """Trace ``model`` into an ONNX file at ``path`` (no check); returns (graph, inputs, outputs)."""
    model.eval()
    names = list(graph_inputs(model))
    gated = model.config.name in ("lpgnet", "sdt")
    graph = _Graph(model, names, gated).eval()
    outputs = ["probs"] + (["gates"] if gated else [])
    axes = {k: {0: "batch", 1: "utterances"} for k in names + outputs}
    ex = example(model, names, 2, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about the input-size checks
        torch.onnx.export(
            graph,
            tuple(ex[k] for k in names),
            str(path),
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    _add_metadata(
        Path(path),
        {
            "labels": labels,
            "modalities": list(model.config.modalities),
            "inputs": names,
            "outputs": outputs,
            "model": model.config.name,
            "d_text": model.config.d_text,
            "d_audio": model.config.d_audio,
        },
    )
    return graph, names, outputs


def parity(
    graph: torch.nn.Module,
    session: Any,
    model: torch.nn.Module,
    names: list[str],
    lengths: tuple[int, ...] = CHECK_LENGTHS,
) -> float:
    """Largest |p_onnx - p_torch| over real utterances, dialogues of several lengths."""
    worst = 0.0
    for n in lengths:
        ex = example(model, names, 3, n, seed=n)
        with torch.no_grad():
            ref = graph(*(ex[k] for k in names))[0].numpy()
        try:
            got = session.run(["probs"], {k: v.numpy() for k, v in ex.items()})[0]
        except Exception as exc:  # noqa: BLE001 -- onnxruntime's own error types
            raise RunDirError(
                f"model {model.config.name!r} does not export to ONNX correctly: onnxruntime fails on a "
                f"dialogue of {n} utterances ({str(exc).splitlines()[0][:160]})"
            ) from None
        keep = ex["mask"].numpy()
        worst = max(worst, float(np.abs(got - ref)[keep].max()))
    return worst


def _add_metadata(path: Path, meta: dict[str, Any]) -> None:
    import onnx

    proto = onnx.load(str(path))
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"lpgnet_{key}", json.dumps(value)
    onnx.save(proto, str(path))
