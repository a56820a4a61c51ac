"""LPGNet: lightweight parallel attention and gated fusion for multimodal emotion
recognition in conversations (He & Xiao). See README.md and docs/MODEL.md."""

from .baselines import GRUBaseline, GRUConfig, LinearBaseline, LinearConfig, TransformerBaseline, TransformerConfig
from .checkpoint import load_pretrained
from .config import DataConfig, RunConfig, TrainConfig, load_config
from .distillation import LossConfig, self_distillation_loss
from .errors import ConfigError, DataError, LPGNetError, RunDirError
from .evaluate import evaluate_run
from .experiment import run_experiment
from .metrics import compute_metrics
from .model import LPGNet, LPGNetConfig
from .registry import available_models, build_model
from .sdt import SDT, SDTConfig
from .train import TrainResult, train

__all__ = [
    "ConfigError", "DataConfig", "DataError", "GRUBaseline", "GRUConfig", "SDT", "SDTConfig", "TransformerBaseline",
    "TransformerConfig", "LPGNet", "LPGNetConfig", "LPGNetError", "LinearBaseline",
    "LinearConfig", "LossConfig", "RunConfig", "RunDirError", "TrainConfig", "TrainResult", "available_models",
    "build_model", "compute_metrics", "evaluate_run", "load_config", "load_pretrained", "self_distillation_loss",
    "run_experiment", "train",
]
__version__ = "0.1.0"
