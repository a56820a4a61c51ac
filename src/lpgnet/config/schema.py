"""The config schema: every section of a run as a dataclass, defaults = the paper's recipe.

A run is one :class:`RunConfig` with four sections -- ``model``, ``data``, ``train`` and
``loss`` (SPEC §4.3). The ``model`` section is the config dataclass of a registered
model (``lpgnet.registry``; each model file defines its own, Hugging Face style), so this
module never imports a model: it looks the class up by name. The other sections, and
the configs they nest (text encoder, synthetic generator), live here so that config,
data, features and models can all read them without importing each other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigError
from ..registry import model_config_class


@dataclass
class LossConfig:
    """Distillation weights and temperature. Defaults: the paper's best row (Table 6)."""

    gamma1: float = 1.5  # teacher cross-entropy (17)
    gamma2: float = 1.0  # student cross-entropies (20)
    gamma3: float = 0.3  # teacher -> student KL (21)
    tau: float = 1.0
    detach_teacher: bool = True
    kl_tau_squared: bool = True
    kl_on: Literal["labelled", "all"] = "labelled"

    def validate(self, where: str) -> None:
        for name in ("gamma1", "gamma2", "gamma3"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{where}.{name}: expected >= 0, got {getattr(self, name)}")
        if self.gamma1 == 0:
            raise ConfigError(f"{where}.gamma1: must be > 0, the teacher is the model that predicts")
        if self.tau <= 0:
            raise ConfigError(f"{where}.tau: expected a positive temperature, got {self.tau}")


@dataclass
class FinetuneConfig:
    """Fine-tune the encoder for utterance classification before extracting features."""

    enabled: bool = False
    epochs: int = 3
    lr: float = 5e-5
    batch_size: int = 32
    weight_decay: float = 0.01
    warmup: float = 0.1  # fraction of steps with linearly rising lr, then linear decay
    crossfit_folds: int = 0  # 0 = embed training dialogues with the encoder that saw them
    # How training dialogues are split for cross-fitting: "dialogue" -- crossfit_folds
    # seeded folds of whole dialogues; "group" -- one fold per group (data.group_field,
    # IEMOCAP: session), so a session is embedded by an encoder that never saw its
    # speakers, as the test session is (what leave-one-session-out selection needs).
    crossfit_by: Literal["dialogue", "group"] = "dialogue"
    seed: int = 0

    def validate(self, where: str) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name}: expected a positive integer, got {getattr(self, name)}")
        if self.lr <= 0 or self.weight_decay < 0 or not 0 <= self.warmup < 1:
            raise ConfigError(f"{where}: expected lr > 0, weight_decay >= 0 and warmup in [0, 1)")
        if self.crossfit_folds == 1 or self.crossfit_folds < 0:
            raise ConfigError(f"{where}.crossfit_folds: expected 0 (off) or at least 2, got {self.crossfit_folds}")


@dataclass
class TextEncoderConfig:
    """Which encoder embeds the ``text`` field, and how."""

    encoder: str = "minilm"  # local folder, cached hub name, or "minilm" (bundled all-MiniLM-L6-v2)
    pooling: Literal["cls", "mean"] = "cls"  # paper: [CLS]; mean is how MiniLM was trained
    max_length: int = 128  # tokens per utterance (IEMOCAP: 99% are under 62)
    batch_size: int = 64
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    cache_dir: str | None = None  # null = $LPGNET_CACHE or ~/.cache/lpgnet

    def validate(self, where: str) -> None:
        if self.max_length < 2 or self.batch_size < 1:
            raise ConfigError(f"{where}: expected max_length >= 2 and batch_size >= 1")
        self.finetune.validate(f"{where}.finetune")


@dataclass
class SyntheticConfig:
    """Knobs of the generator. Defaults: a corpus a default run fits in well under a minute."""

    seed: int = 7
    train_dialogues: int = 300
    test_dialogues: int = 60
    min_turns: int = 8
    max_turns: int = 36
    d_text: int = 64
    d_audio: int = 32
    train_speakers: int = 40
    test_speakers: int = 20  # disjoint from the training speakers
    class_separation: float = 3.0
    weak_fraction: float = 0.3
    weak_strength: float = 0.25
    mood_strength: float = 0.8
    inertia: float = 0.75
    speaker_offset: float = 1.0
    speaker_bias: float = 1.0  # how much more often a speaker shows their favourite state
    unlabelled_fraction: float = 0.1
    # Frame level: > 0 also gives every utterance a text and an audio sequence of
    # 2..frames frames (its vector plus frame noise), for LPGNet (Frame).
    frames: int = 0
    frame_noise: float = 2.0

    def validate(self, where: str) -> None:
        for name in ("train_dialogues", "test_dialogues", "min_turns", "d_text", "d_audio"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name}: expected a positive integer, got {getattr(self, name)}")
        if self.max_turns < self.min_turns:
            raise ConfigError(f"{where}.max_turns: expected >= min_turns ({self.min_turns}), got {self.max_turns}")
        if self.frames < 0 or (0 < self.frames < 2):
            raise ConfigError(f"{where}.frames: expected 0 (utterance level) or at least 2, got {self.frames}")
        if self.train_speakers < 2 or self.test_speakers < 2:
            raise ConfigError(f"{where}: need at least 2 train and 2 test speakers (a dialogue has two)")
        for name in ("weak_fraction", "inertia", "unlabelled_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{where}.{name}: expected a number in [0, 1), got {getattr(self, name)}")


@dataclass
class DataConfig:
    """Where the conversations come from and how the validation split is carved.

    ``synthetic``: the built-in generator (``data.synthetic``). ``jsonl``: the generic
    conversation format (see ``lpgnet.data.jsonl``): ``path`` to the utterances file,
    ``splits`` to a JSON of protocols and ``protocol`` to pick one; feature fields hold
    precomputed vectors. Relative paths are relative to the working directory.
    """

    source: Literal["synthetic", "jsonl"] = "synthetic"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    path: str | None = None
    splits: str | None = None  # JSON of protocols; not needed for "loso-<group>"
    # A protocol in ``splits``, or "loso-<value>": test on the dialogues whose
    # ``group_field`` is <value> (IEMOCAP: "loso-5" = leave session 5 out), train on the rest.
    protocol: str | None = None
    group_field: str = "session"
    label_field: str = "label"
    labels: list[str] | None = None  # the label set, in class-index order; null = sorted set found
    unlabelled: Literal["context", "drop"] = "context"  # keep as context (masked out of loss/metrics) or drop
    text_feature: str | None = None  # field with a precomputed text vector per utterance
    # ... or embed the ``text`` field with a Hugging Face encoder (cached on disk).
    text_encoder: TextEncoderConfig | None = None
    audio_feature: str | None = None  # field with a precomputed audio vector (e.g. audio_logits4)
    # LPGNet (Frame): each utterance's text also as its token sequence (the frozen text
    # encoder's last hidden states, cached per text)
    text_frames: bool = False
    # Validation dialogues are held out of the *training* dialogues only (never test).
    valid_fraction: float = 0.1
    # Seed of the train/valid carve; null = the run's train.seed (so seeds vary both).
    valid_seed: int | None = None
    # z-score each feature with training-split statistics (stored in the checkpoint).
    standardize: bool = True
    # Bounded memory: a dialogue longer than this many utterances is trained on, scored and
    # predicted as overlapping windows of this length (lpgnet.data.windows); null = no bound.
    context_window: int | None = 512

    def validate(self, where: str) -> None:
        self.synthetic.validate(f"{where}.synthetic")
        if self.source == "jsonl":
            for name in ("path", "protocol"):
                if not getattr(self, name):
                    raise ConfigError(f"{where}.{name}: required when {where}.source is jsonl")
            if not self.splits and not self.protocol.startswith("loso-"):  # type: ignore[union-attr]
                raise ConfigError(
                    f"{where}.splits: required for protocol {self.protocol!r} (only loso-<group> needs none)"
                )
            if not (self.text_feature or self.text_encoder or self.audio_feature):
                raise ConfigError(f"{where}: source jsonl needs text_feature, text_encoder or audio_feature")
            if self.text_feature and self.text_encoder:
                raise ConfigError(f"{where}: give text_feature (precomputed vectors) or text_encoder, not both")
        if self.text_frames and (self.text_encoder is None or self.text_encoder.finetune.enabled):
            raise ConfigError(f"{where}.text_frames: needs a frozen data.text_encoder (finetune.enabled: false)")
        if self.text_encoder is not None:
            if self.source != "jsonl":
                raise ConfigError(f"{where}.text_encoder: needs source jsonl (a 'text' field to embed)")
            self.text_encoder.validate(f"{where}.text_encoder")
        if not 0.0 < self.valid_fraction < 1.0:
            raise ConfigError(f"{where}.valid_fraction: expected a number in (0, 1), got {self.valid_fraction}")
        if self.context_window is not None and self.context_window < 2:
            raise ConfigError(
                f"{where}.context_window: expected a number of utterances >= 2, or null for no bound; "
                f"got {self.context_window}"
            )


@dataclass
class TrainConfig:
    """Optimisation recipe. Defaults: the paper's (Adam, lr 3e-4, batch 32, 150 epochs)."""

    seed: int = 0
    epochs: int = 150
    batch_size: int = 32
    lr: float = 3e-4
    # The paper applies "L2 weight decay" with the value lost from this copy (SPEC: open).
    weight_decay: float = 1e-5
    optimizer: Literal["adam", "adamw"] = "adam"
    grad_clip: float | None = None
    # Model selection on the validation split; the test split is scored once at the end.
    select_metric: Literal["accuracy", "weighted_f1", "macro_f1", "uar"] = "weighted_f1"
    patience: int | None = None  # early stopping after this many epochs without improvement
    class_weights: Literal["none", "balanced"] = "none"
    # How the epoch (and so the checkpoint) is chosen, never with the test split:
    # "holdout" -- the best epoch on the validation part carved from the training
    # dialogues (data.valid_fraction); "crossval" -- leave one group (data.group_field,
    # IEMOCAP: session) of the training dialogues out in turn, pick the epoch whose pooled
    # left-out score is best, then train on all training dialogues for that many epochs.
    selection: Literal["holdout", "crossval"] = "holdout"
    cv_folds: int = 4  # crossval folds of whole dialogues when the data has no groups
    # An exponential moving average of the weights (decay per optimiser step, e.g. 0.99),
    # scored and kept instead of the raw weights; null = off. Not in the paper.
    ema: float | None = None
    # Length-bucketed batches: dialogues of similar length share a batch (less padding).
    bucket_by_length: bool = True
    # Bounded memory: a batch holds at most about this many utterance slots (dialogues x
    # the longest one's length, windows of data.context_window included); a larger one is
    # cut in two or more. IEMOCAP's largest batch of 32 (longest dialogue 167) is 5,344.
    max_batch_utterances: int = 8192
    # Modality dropout: each utterance loses each modality with this probability (never
    # all of them), so the model learns to predict when one is missing. 0 = off.
    modality_dropout: float = 0.0
    # torch.set_num_threads: "auto" = one thread for a model up to d_model 256 (on a busy
    # 2-core machine torch's default threads made the demo 10x slower; see
    # benchmarks/results/threads.json), torch's default above; null = torch's default.
    threads: int | Literal["auto"] | None = "auto"
    progress: bool = True  # tqdm bar per epoch

    def validate(self, where: str) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name}: expected a positive integer, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"{where}.lr: expected a positive number, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"{where}.weight_decay: expected >= 0, got {self.weight_decay}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"{where}.patience: expected a positive integer or null, got {self.patience}")
        if self.ema is not None and not 0.0 < self.ema < 1.0:
            raise ConfigError(f"{where}.ema: expected a decay in (0, 1) or null, got {self.ema}")
        if self.cv_folds < 2:
            raise ConfigError(f"{where}.cv_folds: expected at least 2, got {self.cv_folds}")
        if self.max_batch_utterances < 2:
            raise ConfigError(f"{where}.max_batch_utterances: expected at least 2, got {self.max_batch_utterances}")
        if isinstance(self.threads, int) and self.threads < 1:
            raise ConfigError(f"{where}.threads: expected a positive integer, 'auto' or null, got {self.threads}")
        if not 0.0 <= self.modality_dropout < 0.5:
            # text is dropped for u < p, audio for p <= u < 2p: 2p must stay below 1
            raise ConfigError(
                f"{where}.modality_dropout: expected a probability in [0, 0.5), got {self.modality_dropout}"
            )


@dataclass
class RunConfig:
    """Everything one training run needs; ``config.yaml`` in a run directory is this."""

    model: Any = None  # a registered model's config dataclass, chosen by its ``name``
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if self.model is None:
            self.model = model_config_class("lpgnet")()

    def validate(self) -> RunConfig:
        for name in ("model", "data", "train", "loss"):
            section = getattr(self, name)
            if hasattr(section, "validate"):
                section.validate(name)
        return self

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain dict/list/scalars (what ``yaml.safe_dump`` can write)."""
    if dataclasses.is_dataclass(obj):
        names = sorted((f.name for f in dataclasses.fields(obj)), key=lambda n: n != "name")  # name first
        return {n: to_dict(getattr(obj, n)) for n in names}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj
