"""Plain YAML files mapped onto dataclasses, strictly.

A run is described by one :class:`~lpgnet.config.schema.RunConfig` (see there). YAML is read with ``yaml.safe_load`` and mapped field by field: an unknown
key, a wrong type or an out-of-range value is a :class:`ConfigError` that names the file
and the dotted key, so a typo can never silently fall back to a default.

``--set section.key=value`` overrides are parsed as YAML scalars (``--set
model.d_model=256``, ``--set model.modalities=[text]``) and applied before the mapping,
so they are checked exactly like the file.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import ConfigError
from ..registry import model_config_class
from .schema import RunConfig

# --------------------------------------------------------------------------- mapping


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is dict:
        return f"a mapping of {_type_name(typing.get_args(tp)[1])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


_YAML11_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted (e.g. list->tuple)."""
    origin = typing.get_origin(tp)
    bad = ConfigError(f"{source}: {key}: expected {_type_name(tp)}, got {value!r}")
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad
        return from_dict(tp, value, source, prefix=key)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if isinstance(value, dict) and dataclasses.is_dataclass(arg):
                return _convert(value, arg, key, source)  # a mapping: its own errors name the inner key
            try:
                return _convert(value, arg, key, source)
            except ConfigError:
                continue
        raise bad
    if origin is Literal:
        if value in typing.get_args(tp) and not isinstance(value, bool):
            return value
        raise bad
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        _, item = typing.get_args(tp)
        return {str(k): _convert(v, item, f"{key}.{k}", source) for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad
        (item,) = typing.get_args(tp)[:1]
        items = [_convert(v, item, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is type(None):
        if value is None:
            return None
        raise bad
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _YAML11_EXPONENT.fullmatch(value.strip()):
            return float(value)  # "1e-3": YAML 1.1 reads an exponent without a dot as a string
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    raise bad


def from_dict(cls: type, data: dict[str, Any], source: str = "config", prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types are errors."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise ConfigError(f"{source}: unknown key '{dotted}' (known keys here: {', '.join(names)})")
        if cls is RunConfig and key == "model":
            kwargs[key] = model_config_from_dict(value, source)
        else:
            kwargs[key] = _convert(value, hints[key], dotted, source)
    return cls(**kwargs)


def model_config_from_dict(value: Any, source: str) -> Any:
    """A model section -> the config dataclass its ``name`` registers."""
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: model: expected a mapping, got {value!r}")
    name = value.get("name", "lpgnet")
    if not isinstance(name, str):
        raise ConfigError(f"{source}: model.name: expected a model name (a string), got {name!r}")
    try:
        cls = model_config_class(name)
    except KeyError as exc:
        raise ConfigError(f"{source}: model.name: {exc.args[0]}") from None
    return from_dict(cls, value, source, prefix="model")


# --------------------------------------------------------------------------- files


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``["a.b=1", "c=[x, y]"]`` -> nested dict, values parsed as YAML scalars."""
    tree: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"--set {pair!r}: expected key=value, e.g. model.d_model=256")
        key, raw = pair.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {pair!r}: value is not valid YAML ({exc.__class__.__name__})") from None
        node = tree
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {pair!r}: '{part}' is set to a value and used as a section")
        node[parts[-1]] = value
    return tree


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``extra`` wins."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing or unreadable file is a one-line ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.__class__.__name__}: {exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a YAML mapping of sections (model, data, train, loss), got {type(data).__name__}"
        )
    return data


PRESETS_DIR = Path(__file__).parent / "presets"
DEFAULT_PRESET = "synthetic"  # what `lpgnet train` and `train()` use without a config


def resolve_config_path(path: str | Path) -> Path:
    """A file path, or the name of a preset shipped in ``lpgnet/config/presets`` (e.g. ``synthetic``)."""
    p = Path(path)
    if not p.exists() and p.suffix == "" and p.parent == Path("."):
        preset = PRESETS_DIR / f"{p.name}.yaml"
        if preset.exists():
            return preset
        known = ", ".join(sorted(q.stem for q in PRESETS_DIR.glob("*.yaml")))
        raise ConfigError(f"{path}: no such config file or preset (presets: {known})")
    return p


def read_config_tree(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's mapping with its ``base:`` chain merged in (the file wins).

    ``base: other.yaml`` (relative to the file) lets a variant state only what differs,
    e.g. an ablation that switches one field of the main IEMOCAP config.
    """
    data = read_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: expected a config file path, got {base!r}")
    base_path = (path.parent / base).resolve()
    if base_path in seen:
        raise ConfigError(f"{path}: base: {base} includes itself")
    if not base_path.exists():
        raise ConfigError(f"{path}: base: {base_path} not found")
    inherited = read_config_tree(base_path, seen + (base_path,))
    model, base_model = data.get("model"), inherited.get("model")
    if (
        isinstance(model, dict)
        and isinstance(base_model, dict)
        and model.get("name", base_model.get("name")) != base_model.get("name")
    ):
        inherited.pop("model")  # another model: the base's model fields do not apply to it
    return merge(inherited, data)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Config file or preset name (or the bare dataclass defaults) + ``--set`` overrides
    -> a validated RunConfig."""
    if path is not None:
        path = resolve_config_path(path)
    data = read_config_tree(path, (path.resolve(),)) if path is not None else {}
    source = str(path) if path is not None else "defaults"
    if path is not None and "base:" in path.read_text(encoding="utf-8"):
        source += " (with its base files)"
    if overrides:
        data = merge(data, parse_overrides(overrides))
        source += " + --set"
    cfg = from_dict(RunConfig, data, source)
    try:
        return cfg.validate()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def same_config(saved_yaml: str | None, cfg: RunConfig) -> bool:
    """Whether a saved config (a run's config.yaml text) describes the same run as ``cfg``.

    Both go through the dataclasses, so a field added to the package since the run was
    saved takes its default on both sides: a field whose default keeps the old behaviour
    (e.g. ``model.speakers``, none) does not invalidate finished runs. Execution-only
    fields (``EXECUTION_FIELDS``: thread count, progress bar) are left out, as the
    device is: a fold trained with ``train.threads=1`` next to another answers the
    same experiment as one trained alone.
    """
    if saved_yaml is None:
        return False
    try:
        saved = from_dict(RunConfig, yaml.safe_load(saved_yaml), "saved config")
    except (ConfigError, yaml.YAMLError, TypeError):
        return False
    return _without_execution(saved) == _without_execution(cfg)


EXECUTION_FIELDS = ("threads", "progress")  # of TrainConfig: how a run executes, not what it is


def _without_execution(cfg: RunConfig) -> dict[str, Any]:
    data = cfg.to_dict()
    for name in EXECUTION_FIELDS:
        data["train"].pop(name, None)
    return data
