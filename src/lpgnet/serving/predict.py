"""Using a trained run on new conversations: ``Predictor`` and ``lpgnet predict``.

    predictor = Predictor.from_run("runs/demo")
    predictor.predict([{"text_emb": [...], "audio_emb": [...]}, ...])   # one conversation
    session = predictor.stream(); session.add({...})                    # one utterance at a time

Each utterance gives its inputs either precomputed -- the feature fields the run was
trained on (``data.text_feature`` / ``data.audio_feature``; ``text_emb`` / ``audio_emb``
for a run that has none) -- or raw: ``text``, and
``audio_path``, embedded with the encoders the run's features came from (the run's frozen
``data.text_encoder``, or the encoders ``lpgnet extract`` recorded for its feature file).
A modality an utterance does not provide is *missing*: the model predicts without it
(no attention key, gate weight 0; see ``ModalityInputs``) and the output lists it under
``missing``. Every prediction carries the label, the class probabilities and, for gated
models, the multimodal gate weights.

Streaming: ``stream()`` returns a session whose ``add(utterance)`` predicts the newest
utterance from it and the ones before. With a causal run (``model.causal: true``) that
is exactly what the full conversation would give for it; with a full-dialogue run it is
the best answer available so far (later utterances may still change it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import RunConfig, TextEncoderConfig
from ..data.batching import collate, tensorize
from ..data.conversation import IGNORE, MAX_FEATURE_ABS, Dialogue, unusable_value
from ..data.jsonl import iter_dialogues, read_conversations
from ..data.shards import dialogue_key, select_shard
from ..data.windows import context_windows, window_dialogue
from ..errors import ConfigError, DataError, RunDirError
from ..features.audio import AudioEncoder, AudioEncoderConfig, load_audio
from ..features.text import encode, load_encoder, resolve_encoder
from ..models.base import speaker_scheme
from ..models.checkpoint import WEIGHTS_NAME
from ..runs import CONFIG_FILE, FINISHED_MARKER, RunDir


@dataclass
class _Encoders:
    """Raw-input encoders for a run, loaded on first use; ``why`` says why one is absent."""

    text: TextEncoderConfig | None = None
    audio: Any = None
    why: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # where an absent encoder's features came from
    _loaded: dict[str, Any] = field(default_factory=dict)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        if "text" not in self._loaded:
            self._loaded["text"] = load_encoder(resolve_encoder(self.text.encoder))  # type: ignore[union-attr]
        return encode(*self._loaded["text"], texts, self.text, desc="text")  # type: ignore[arg-type]

    def embed_audio(self, paths: list[Path]) -> list[np.ndarray]:
        return self.embed_waves([load_audio(p) for p in paths])

    def embed_waves(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """Audio vectors of 16 kHz mono waveforms (``lpgnet analyze``'s segments)."""
        if "audio" not in self._loaded:
            self._loaded["audio"] = AudioEncoder(self.audio)
        return self._loaded["audio"].encode(waves)


def _run_encoders(cfg: RunConfig, metrics: dict[str, Any]) -> _Encoders:
    enc = _Encoders()
    d = cfg.data
    if d.text_encoder is not None:
        if d.text_encoder.finetune.enabled:
            kept = metrics.get("text_encoder_dir")
            if kept and Path(kept, "config.json").exists():  # the fine-tuned encoder, kept in the feature cache
                enc.text = TextEncoderConfig(
                    encoder=kept,
                    pooling=d.text_encoder.pooling,
                    max_length=d.text_encoder.max_length,
                    batch_size=d.text_encoder.batch_size,
                )
            else:
                enc.origin["text"] = "come from an encoder fine-tuned during its training, which is " + (
                    f"no longer at {kept}" if kept else "not recorded with the run"
                )
                enc.why["text"] = (
                    f"the run's text features {enc.origin['text']}: give precomputed text vectors (field 'text_emb') instead"
                )
        else:
            enc.text = d.text_encoder
    report = Path(d.path).with_name(Path(d.path).stem + ".extract-report.json") if d.path else None
    recorded = {}
    if report is not None and report.exists():
        recorded = json.loads(report.read_text(encoding="utf-8")).get("encoders", {})
    if enc.text is None and "text" not in enc.why and d.text_feature in recorded:
        enc.text = TextEncoderConfig(
            **{k: v for k, v in recorded[d.text_feature].items() if k not in ("modality", "finetune")}
        )
    if d.audio_feature in recorded:
        enc.audio = AudioEncoderConfig(**{k: v for k, v in recorded[d.audio_feature].items() if k != "modality"})
    for m, f in (("text", d.text_feature), ("audio", d.audio_feature)):
        if getattr(enc, m) is None and m not in enc.why:
            field_name = f or f"{m}_emb"
            came = f"came precomputed in field {f!r}" if f else "came with the data, not from an encoder"
            enc.origin[m] = came + " (no encoder on record)"
            enc.why[m] = (
                f"the run has no {m} encoder on record (its {m} features {came}): "
                f"give precomputed {m} vectors in field {field_name!r}"
            )
    return enc


class Predictor:
    """A trained run, ready for new conversations (see the module doc)."""

    def __init__(
        self, model: torch.nn.Module, cfg: RunConfig, labels: list[str], metrics: dict[str, Any] | None = None
    ) -> None:
        self.model = model.eval()
        self.cfg = cfg
        self.labels = labels
        self.modalities: tuple[str, ...] = tuple(model.config.modalities)
        # precomputed vectors: under the run's feature fields, or text_emb / audio_emb (the
        # names lpgnet extract writes) when the run has none (built-in data, a text encoder)
        self.fields = {"text": cfg.data.text_feature or "text_emb", "audio": cfg.data.audio_feature or "audio_emb"}
        self.dims = {"text": model.config.d_text, "audio": model.config.d_audio}
        self.encoders = _run_encoders(cfg, metrics or {})
        # whether an utterance may name a recording to read (not in the service: a client
        # must not make the server read its files)
        self.accepts_paths = True

    @classmethod
    def from_run(cls, run_dir: str | Path) -> Predictor:
        run = RunDir(run_dir).require(CONFIG_FILE, WEIGHTS_NAME, FINISHED_MARKER)
        return cls(run.model(), run.config(), run.labels(), run.metrics())

    # ------------------------------------------------------------------ inputs

    def _inputs(
        self, utterances: list[dict[str, Any]], where: str, base: Path
    ) -> tuple[dict[str, np.ndarray], list[list[str]]]:
        """One N×d array per modality (NaN rows where missing) and each utterance's missing list."""
        n = len(utterances)
        arrays = {m: np.full((n, self.dims[m]), np.nan, np.float32) for m in self.modalities}
        raw: dict[str, list[tuple[int, Any]]] = {"text": [], "audio": []}
        for i, u in enumerate(utterances):
            for m in self.modalities:
                f = self.fields[m]
                if f is not None and u.get(f) is not None:
                    v = u[f]
                    if isinstance(v, np.ndarray) and v.dtype.kind in "fiu" and v.shape == (self.dims[m],):
                        pass  # a vector from a Python caller (analyze's own encoders): no list round trip
                    elif (
                        not isinstance(v, list)
                        or len(v) != self.dims[m]
                        or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
                    ):
                        got = (
                            f"a list of {len(v)}" + (" with non-numbers" if len(v) == self.dims[m] else "")
                            if isinstance(v, list)
                            else f"an array of shape {v.shape} ({v.dtype})"
                            if isinstance(v, np.ndarray)
                            else f"{type(v).__name__} {str(v)[:40]}"
                        )
                        raise DataError(
                            f"{where}: utterance {i}: field {f!r}: expected a list of {self.dims[m]} "
                            f"numbers (the run's {m} feature size), got {got}"
                        )
                    huge = unusable_value(v)
                    if huge is not None:
                        raise DataError(
                            f"{where}: utterance {i}: field {f!r}: value {huge!r} is not a usable feature "
                            f"(expected finite numbers of magnitude at most {MAX_FEATURE_ABS:g}; NaN marks a missing value)"
                        )
                    arrays[m][i] = v
                elif m == "text" and isinstance(u.get("text"), str):
                    raw["text"].append((i, u["text"]))
                elif m == "audio" and isinstance(u.get("audio_path"), str) and u["audio_path"]:
                    p = Path(u["audio_path"])
                    raw["audio"].append((i, p if p.is_absolute() else base / p))
        for m, items in raw.items():
            if not items:
                continue
            if getattr(self.encoders, m) is None:
                raise DataError(f"{where}: raw {m} given, but {self.encoders.why[m]}")
            vecs = (
                self.encoders.embed_text([t for _, t in items])
                if m == "text"
                else self.encoders.embed_audio([p for _, p in items])
            )
            for (i, _), v in zip(items, vecs):
                if len(v) != self.dims[m]:
                    raise DataError(f"{where}: the {m} encoder gives {len(v)} values; the model expects {self.dims[m]}")
                arrays[m][i] = v
        missing = [[m for m in self.modalities if np.isnan(arrays[m][i]).any()] for i in range(n)]
        for i, miss in enumerate(missing):
            if len(miss) == len(self.modalities):
                raw_fields = ["text"] + (["audio_path"] if self.accepts_paths else [])
                names = ", ".join([repr(self.fields[m]) for m in self.modalities] + [repr(r) for r in raw_fields])
                raise DataError(f"{where}: utterance {i}: no input at all (expected one of {names})")
        return arrays, missing

    # ------------------------------------------------------------------ prediction

    @torch.no_grad()
    def predict(
        self, utterances: list[dict[str, Any]], where: str = "conversation", base: str | Path = "."
    ) -> list[dict[str, Any]]:
        """Predictions for one conversation (utterances in order), one dict per utterance."""
        if not utterances:
            raise DataError(f"{where}: no utterances")
        arrays, missing = self._inputs(utterances, where, Path(base))
        n = len(utterances)
        dialogue = Dialogue(
            dialog_id=where,
            text=arrays.get("text", np.zeros((n, 0), np.float32)),
            audio=arrays.get("audio", np.zeros((n, 0), np.float32)),
            labels=np.full(n, IGNORE),
            speakers=[str(u.get("speaker", "")) for u in utterances],
        )
        probs, gates = self._forward(dialogue)
        if not torch.isfinite(probs).all():  # never a silent NaN: say so instead
            raise DataError(
                f"{where}: the model's output is not finite for these inputs (features far outside the range it "
                "was trained on?)"
            )
        result = []
        for i, u in enumerate(utterances):
            p = probs[i].tolist()
            row: dict[str, Any] = {"label": self.labels[int(np.argmax(p))], "probs": dict(zip(self.labels, p))}
            if gates is not None:
                row["gates"] = dict(zip(self.modalities, gates[i].tolist()))
            row["missing"] = missing[i]
            for key in ("utt_id", "dialog_id", "turn"):
                if key in u:
                    row[key] = u[key]
            result.append(row)
        return result

    def _forward(self, dialogue: Dialogue) -> tuple[torch.Tensor, torch.Tensor | None]:
        """N×C probabilities and N×M gates (None for a model without them): a dialogue
        longer than the run's ``data.context_window`` window by window, each utterance
        answered from its own window (``lpgnet.data.windows``), so memory stays bounded."""
        windows = context_windows(
            len(dialogue), self.cfg.data.context_window, bool(getattr(self.model.config, "causal", False))
        )
        parts = [dialogue] if len(windows) == 1 else [window_dialogue(dialogue, w) for w in windows]
        probs, gates = [], []
        for w, part in zip(windows, parts):
            batch = collate(tensorize([part], speaker_scheme(self.model.config)))
            text = batch.text if "text" in self.modalities else None
            audio = batch.audio if "audio" in self.modalities else None
            out = self.model(text, audio, batch.mask, **batch.model_kwargs(self.model.config))
            keep = slice(w.keep_start - w.start, w.keep_stop - w.start)
            probs.append(out.logits.softmax(-1)[0, keep])
            if out.alpha is not None and len(self.modalities) > 1:
                gates.append(out.alpha[0, keep])
        return torch.cat(probs), (torch.cat(gates) if gates else None)

    def predict_file(self, path: str | Path) -> list[dict[str, Any]]:
        """Every conversation of a JSONL or CSV file (grouped by ``dialog_id``, ordered by
        ``turn`` when given, else file order)."""
        return list(self.iter_predictions(path))

    def iter_predictions(self, path: str | Path, shard: tuple[int, int] = (0, 1)) -> Iterator[dict[str, Any]]:
        """As ``predict_file``, one prediction at a time, holding one conversation of a
        JSONL file in memory at a time (a CSV is read whole). ``shard`` (i, n): only the
        conversations whose position in the file (order of first appearance) is i mod n."""
        path = Path(path)
        if path.suffix.lower() == ".csv":
            groups: dict[str, list[tuple[int, dict]]] = {}
            for lineno, u in read_conversations(path):
                groups.setdefault(dialogue_key(u), []).append((lineno, u))
            dialogues: Iterable = select_shard(groups.items(), shard, group=lambda item: item[0])
        else:
            dialogues = iter_dialogues(path, shard)
        for dialog_id, utts in dialogues:
            turns = [u.get("turn") for _, u in utts]
            if all(isinstance(t, int) for t in turns):
                if len(set(turns)) != len(turns):
                    dup = next(t for t in turns if turns.count(t) > 1)
                    raise DataError(f"{path}: dialogue {dialog_id!r}: turn {dup} appears twice")
                utts.sort(key=lambda x: x[1]["turn"])
            yield from self.predict([u for _, u in utts], where=f"{path}: dialogue {dialog_id!r}", base=path.parent)

    def stream(self, max_utterances: int | None = None) -> StreamingSession:
        return StreamingSession(self, max_utterances)


class StreamingSession:
    """One conversation, one utterance at a time: ``add`` returns the newest utterance's
    prediction from it and the utterances before it (see the module doc). The one
    session of both ``Predictor.stream()`` and the service's ``/sessions``."""

    def __init__(self, predictor: Predictor, max_utterances: int | None = None) -> None:
        self.predictor = predictor
        self.max_utterances = max_utterances
        self.seen = 0  # utterances added so far
        # the context the next prediction reads: at most the run's context window, so a
        # session's memory and time per utterance stay bounded however long it runs (the
        # newest utterance of a longer conversation is answered from its last window anyway)
        self.history: list[dict[str, Any]] = []
        window = predictor.cfg.data.context_window
        self.keep = None if window is None else window - 1

    def state(self) -> dict[str, Any]:
        """What a session store keeps between requests (plain JSON: a Python caller's numpy
        vectors become lists)."""
        history = [{k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in u.items()} for u in self.history]
        return {"history": history, "seen": self.seen}

    @classmethod
    def from_state(
        cls, predictor: Predictor, state: dict[str, Any], max_utterances: int | None = None
    ) -> StreamingSession:
        session = cls(predictor, max_utterances)
        session.history, session.seen = list(state["history"]), int(state["seen"])
        return session

    @property
    def full(self) -> bool:
        return self.max_utterances is not None and self.seen >= self.max_utterances

    def add(self, utterance: dict[str, Any], where: str = "stream") -> dict[str, Any]:
        """Predict, then keep: an utterance that fails is never part of the history."""
        if self.full:
            raise DataError(f"{where}: at most {self.max_utterances} utterances")
        prediction = self.predictor.predict(self.history + [utterance], where=f"{where} utterance {self.seen}")[-1]
        self.history.append(utterance)
        if self.keep is not None and len(self.history) > self.keep:
            del self.history[: len(self.history) - self.keep]
        self.seen += 1
        return prediction


def check_predict_args(run: str, inp: str) -> None:
    if not Path(inp).exists():
        raise DataError(f"{inp}: conversation file not found")
    if not Path(run).is_dir():
        raise RunDirError(f"{run}: run directory not found")
    if Path(inp).suffix.lower() not in (".jsonl", ".json", ".csv"):
        raise ConfigError(f"{inp}: expected a .jsonl or .csv conversation file")
