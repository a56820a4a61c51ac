"""§3.3 Lightweight Parallel Interaction Attention (LPIA), SPEC equations (2)-(8).

Four attention blocks run side by side on the same projected inputs -- nothing is
stacked -- and each is refined by global compression (6), residual fusion with its query
(7) and a position-wise FFN (8)::

    H_t = Conv1d(X_t)   H_a = Conv1d(X_a)                       (2)
    text_intra    = Block(Q=H_t, K=V=H_t)                        (3)-(8)
    audio_intra   = Block(Q=H_a, K=V=H_a)
    audio_to_text = Block(Q=H_t, K=V=H_a)   text queries audio
    text_to_audio = Block(Q=H_a, K=V=H_t)   audio queries text

Padding never leaks: inputs are zeroed at padded positions before the convolution (so a
kernel > 1 sees the same zeros it would see at a dialogue's real edge), keys are masked
in the softmax, pooling is over valid positions only, and outputs at padded positions
are zero.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..base import masked_mean

# path name -> (query modality, key/value modality)
PATHS: dict[str, tuple[str, str]] = {
    "text_intra": ("text", "text"),
    "audio_intra": ("audio", "audio"),
    "audio_to_text": ("text", "audio"),
    "text_to_audio": ("audio", "text"),
}


def active_paths(modalities: tuple[str, ...] | list[str], intra: bool, inter: bool) -> list[str]:
    """The LPIA paths a configuration uses, in a fixed order."""
    paths = []
    for name, (query, key) in PATHS.items():
        is_intra = query == key
        if query in modalities and key in modalities and ((is_intra and intra) or (not is_intra and inter)):
            paths.append(name)
    return paths


class ModalityProjection(nn.Module):
    """(2) H_m = Conv1d_k(X_m): d_m -> d over the utterance axis, length kept."""

    def __init__(self, d_in: int, d_model: int, kernel_size: int, bias: bool = True, causal: bool = False) -> None:
        super().__init__()
        # causal: all the padding on the left, so utterance n sees n-k+1..n, never n+1
        self.pad = (kernel_size - 1, 0) if causal else (kernel_size // 2, kernel_size // 2)
        self.conv = nn.Conv1d(d_in, d_model, kernel_size, bias=bias)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        keep = mask.unsqueeze(-1).to(x.dtype)
        h = self.conv(F.pad((x * keep).transpose(1, 2), self.pad)).transpose(1, 2)
        return h * keep


class MaskedAttention(nn.Module):
    """(3)-(5) multi-head scaled dot-product attention with its own Q/K/V projections.

    Uses PyTorch's fused ``scaled_dot_product_attention``; the explicit softmax path runs
    only when the weights are asked for (inspection), and both give the same output.
    """

    def __init__(
        self, d_model: int, heads: int, out_proj: bool = False, dropout: float = 0.0, causal: bool = False
    ) -> None:
        super().__init__()
        self.heads = heads
        self.causal = causal  # query n attends to keys <= n only (streaming)
        self.dropout = dropout  # on the attention weights, in training (LPGNet: none; SDT: yes)
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        # (3) has no output projection; a standard multi-head layer has one (switchable).
        self.out = nn.Linear(d_model, d_model) if out_proj else nn.Identity()

    def _split(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(
        self, query: Tensor, context: Tensor, key_mask: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        q, k, v = self._split(self.q(query)), self._split(self.k(context)), self._split(self.v(context))
        # (4) key mask B×1×1×M. A query with no valid key at all (a fully padded dialogue,
        # or a modality missing from the whole dialogue) would give softmax over nothing =
        # NaN; it attends everywhere instead and its output is then zeroed.
        allowed = key_mask[:, None, None, :]
        if self.causal:
            n, m = q.shape[-2], k.shape[-2]
            allowed = allowed & torch.ones(n, m, dtype=torch.bool, device=q.device).tril()
        has_key = allowed.any(-1, keepdim=True)  # B×1×(1|N)×1
        allowed = allowed | ~has_key  # a query with no key at all: see the note above
        weights = None
        if need_weights:
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
            weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1)  # (5)
            out = F.dropout(weights, self.dropout, self.training) @ v
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=allowed, dropout_p=self.dropout if self.training else 0.0
            )
        out = out * has_key.to(out.dtype)  # ... and it receives nothing (e.g. the other modality is missing)
        b, h, n, dh = out.shape
        return self.out(out.transpose(1, 2).reshape(b, n, h * dh)), weights


class GlobalCompression(nn.Module):
    """(6) g = LeakyReLU(BN(Conv1x1(masked_mean(A)))): one B×d summary of the dialogue.

    Causal (streaming) mode: utterance n gets the summary of utterances 1..n only (the
    running mean), B×N×d, with BatchNorm statistics over the real positions.

    ``norm="layer"`` (not the paper's) replaces BatchNorm by LayerNorm: BatchNorm's
    statistics over the (up to 32) dialogue summaries of a batch are added to every
    utterance, and differ between training (the batch) and evaluation (running
    averages); LayerNorm normalises each summary on its own, the same way in both.
    """

    def __init__(self, d_model: int, causal: bool = False, norm: str = "batch") -> None:
        super().__init__()
        self.causal = causal
        self.conv = nn.Conv1d(d_model, d_model, kernel_size=1)
        if norm == "layer":
            self.ln = nn.LayerNorm(d_model)
        else:
            self.bn = nn.BatchNorm1d(d_model)
        self.act = nn.LeakyReLU()

    def forward(self, a: Tensor, mask: Tensor) -> Tensor:
        if self.causal:
            keep = mask.unsqueeze(-1).to(a.dtype)
            prefix = (a * keep).cumsum(1) / keep.cumsum(1).clamp(min=1.0)  # B×N×d running mean
            g = self.conv(prefix.transpose(1, 2)).transpose(1, 2)
            rows = g[mask]  # BatchNorm over the real positions only
            out = torch.zeros_like(g)
            out[mask] = self._norm(rows)
            return self.act(out)
        g = self.conv(masked_mean(a, mask).unsqueeze(-1)).squeeze(-1)
        return self.act(self._norm(g))

    def _norm(self, g: Tensor) -> Tensor:
        if hasattr(self, "ln"):
            return self.ln(g)
        if self.training and _data_parallel():
            return self._synced_batch_norm(g)
        if self.training and g.shape[0] == 1:
            # BatchNorm cannot take batch statistics from one row: use the running ones.
            # (The trainer never makes a one-dialogue batch; a user loop might.)
            return F.batch_norm(g, self.bn.running_mean, self.bn.running_var, self.bn.weight, self.bn.bias, False)
        return self.bn(g)

    def _synced_batch_norm(self, g: Tensor) -> Tensor:
        """BatchNorm with the statistics of the whole batch when the batch is shared out
        among processes (torchrun): each process holds some of its dialogue summaries.
        The same arithmetic as ``nn.BatchNorm1d`` in training (two-pass biased variance
        to normalise, unbiased for the running average); SyncBatchNorm does this on GPUs
        only. The sums travel through a differentiable all-reduce, so gradients do too."""
        # torch.distributed.nn.functional's all_reduce is deprecated; its successor:
        from torch.distributed import _functional_collectives as funcol

        def total(t: Tensor) -> Tensor:  # differentiable: its backward all-reduces the gradient
            return funcol.all_reduce(t, "sum", torch.distributed.group.WORLD)

        bn = self.bn
        count = total(g.new_tensor(float(g.shape[0])))
        if float(count) < 2:  # as above: no batch statistics from one row
            return F.batch_norm(g, bn.running_mean, bn.running_var, bn.weight, bn.bias, False)
        mean = total(g.sum(0)) / count
        var = total(((g - mean) ** 2).sum(0)) / count
        with torch.no_grad():
            bn.num_batches_tracked += 1
            bn.running_mean.lerp_(mean.detach(), bn.momentum)
            bn.running_var.lerp_(var.detach() * count / (count - 1), bn.momentum)
        return (g - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias


def _data_parallel() -> bool:
    """Whether this process trains one share of each batch (torch.distributed, several processes)."""
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


class InteractionBlock(nn.Module):
    """One LPIA path: attention (3)-(5), then two-stage residual enhancement (6)-(8)."""

    def __init__(
        self,
        d_model: int,
        heads: int,
        d_ff: int,
        dropout: float,
        use_ffn: bool = True,
        layer_norm: bool = False,
        out_proj: bool = False,
        causal: bool = False,
        compression_norm: str = "batch",
        attn_dropout: float = 0.0,
        residual_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.attn = MaskedAttention(d_model, heads, out_proj, dropout=attn_dropout, causal=causal)
        self.compress = GlobalCompression(d_model, causal, compression_norm)
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model)) if use_ffn else None
        self.drop = nn.Dropout(dropout)
        # not in the paper: dropout on A before it joins the query in (7) (residual dropout)
        self.residual_drop = nn.Dropout(residual_dropout)
        self.norm = nn.LayerNorm(d_model) if layer_norm else nn.Identity()

    def forward(
        self,
        query: Tensor,
        context: Tensor,
        query_mask: Tensor,
        key_mask: Tensor,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        a, weights = self.attn(query, context, key_mask, need_weights=need_weights)
        g = self.compress(a, query_mask)
        z = query + self.residual_drop(a) + (g if g.dim() == 3 else g.unsqueeze(1))  # (7); g broadcast over N
        if self.ffn is not None:
            z = z + self.drop(self.ffn(z))  # (8)
        z = self.norm(z)
        return z * query_mask.unsqueeze(-1).to(z.dtype), weights


class LPIA(nn.Module):
    """(2)-(8): per-modality projection and the parallel attention paths.

    ``paths`` names the active blocks (see :data:`PATHS`); ablations simply leave some
    out. ``forward`` returns one B×N×d output per path and, if asked, its weights.
    """

    def __init__(
        self,
        input_dims: dict[str, int],
        d_model: int,
        heads: int,
        kernel_size: int,
        d_ff: int,
        dropout: float,
        paths: list[str],
        use_ffn: bool = True,
        layer_norm: bool = False,
        out_proj: bool = False,
        causal: bool = False,
        compression_norm: str = "batch",
        attn_dropout: float = 0.0,
        residual_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.paths = list(paths)
        self.project = nn.ModuleDict(
            {m: ModalityProjection(dim, d_model, kernel_size, causal=causal) for m, dim in input_dims.items()}
        )
        self.blocks = nn.ModuleDict(
            {
                p: InteractionBlock(
                    d_model,
                    heads,
                    d_ff,
                    dropout,
                    use_ffn,
                    layer_norm,
                    out_proj,
                    causal,
                    compression_norm,
                    attn_dropout,
                    residual_dropout,
                )
                for p in self.paths
            }
        )

    def forward(
        self,
        inputs: dict[str, Tensor],
        masks: dict[str, Tensor],
        positions: dict[str, Tensor] | None = None,
        need_weights: bool = False,
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        h = {m: self.project[m](x, masks[m]) for m, x in inputs.items()}  # (2)
        if positions:
            h = {m: (x + positions[m]) * masks[m].unsqueeze(-1).to(x.dtype) for m, x in h.items()}
        outputs, weights = {}, {}
        for name in self.paths:  # the four blocks are independent: parallel, not stacked
            q_mod, k_mod = PATHS[name]
            outputs[name], w = self.blocks[name](
                h[q_mod], h[k_mod], masks[q_mod], masks[k_mod], need_weights=need_weights
            )
            if w is not None:
                weights[name] = w
        return outputs, weights
