"""Configs: the schema (dataclasses whose defaults are the paper's recipe) and the strict
YAML mapping onto it. Imports no model: model sections are looked up in ``lpgnet.registry``."""

from .mapping import (
    DEFAULT_PRESET,
    EXECUTION_FIELDS,
    dump_config,
    from_dict,
    load_config,
    merge,
    model_config_from_dict,
    parse_overrides,
    read_yaml,
    resolve_config_path,
    same_config,
)
from .schema import (
    DataConfig,
    FinetuneConfig,
    LossConfig,
    RunConfig,
    SyntheticConfig,
    TextEncoderConfig,
    TrainConfig,
    to_dict,
)

__all__ = [
    "DEFAULT_PRESET",
    "EXECUTION_FIELDS",
    "DataConfig",
    "FinetuneConfig",
    "LossConfig",
    "RunConfig",
    "SyntheticConfig",
    "TextEncoderConfig",
    "TrainConfig",
    "dump_config",
    "from_dict",
    "load_config",
    "merge",
    "model_config_from_dict",
    "parse_overrides",
    "read_yaml",
    "resolve_config_path",
    "same_config",
    "to_dict",
]
