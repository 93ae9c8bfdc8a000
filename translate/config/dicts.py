"""Config as plain data: YAML files, `--set` assignments, deep merges and checked dataclass round trips."""
from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from translate.errors import ConfigError
from translate.nets import DiscriminatorSpec, GeneratorSpec, spec_from_dict, spec_to_dict


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `overrides` into a copy of `base`. A string replacing a net spec picks a preset."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "kind" not in value:
            out[key] = merge(out[key], value)
        elif isinstance(value, str) and key in ("generator", "discriminator"):
            # A preset picks the architecture; channel counts already chosen (by a task recipe,
            # say) stay, since they describe the data rather than the net.
            try:
                spec = spec_to_dict(spec_from_dict(value))
            except ConfigError as e:
                raise ConfigError(f"{key}: {e}") from None
            previous = out.get(key)
            if isinstance(previous, dict) and previous.get("kind") != "multiscale":
                spec.update({k: previous[k] for k in ("in_channels", "out_channels") if k in previous and k in spec})
            out[key] = spec
        else:
            out[key] = value
    return out


def parse_set(assignments: list[str]) -> dict[str, Any]:
    """`["optim.lr_g=1e-4", "generator.n_blocks=6"]` -> nested dict. Values are parsed as YAML
    scalars (safe_load) and then checked against each field's type by `from_dict`."""
    out: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. optim.lr_g=1e-4")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _parse_value(item, raw) if raw else ""
    return out


def _parse_value(item: str, raw: str) -> Any:
    """One `--set` value as a YAML scalar or list; tags such as !!python/object are refused, never run."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({_yaml_problem(e)})") from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's short description ("could not determine a constructor for the tag ..."), no position dump."""
    problem = getattr(error, "problem", None)
    return problem if isinstance(problem, str) and problem else str(error).splitlines()[0]



def nested(path: str, value: Any) -> dict[str, Any]:
    """"optim.lr_g", 1e-4 -> {"optim": {"lr_g": 1e-4}}."""
    for part in reversed(path.split(".")):
        value = {part: value}
    return value


def leaf_paths(nested: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of a nested override's values (a net spec counts as one value)."""
    return [leaf for key, value in nested.items() for leaf in (leaf_paths(value, f"{prefix}{key}.")
            if isinstance(value, dict) and "kind" not in value else [f"{prefix}{key}"])]


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config ({e.strerror})") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {e.start}); save the config as UTF-8 YAML") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({_yaml_problem(e)})") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    return data


def to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        if hasattr(obj, "kind"):
            return spec_to_dict(obj)
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    return obj


def from_dict(cls: type, data: Any, path: str, *, extra: Mapping[str, Any] | None = None,
              extra_keys: tuple[str, ...] = ()) -> Any:
    """`cls` built from plain `data` (at dotted `path`), each value checked against its field's type.
    `extra` are ready-made constructor arguments that are no keys of `data`; `extra_keys` are the
    other keys the caller took out of `data` (listed as valid in the unknown-key message)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {data!r}")
    extra = dict(extra or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)} - set(extra)
    kwargs = {}
    for key, value in data.items():
        dotted = f"{path}.{key}" if path else key
        if key not in names:
            raise ConfigError(f"{dotted}: unknown key (valid: {', '.join(sorted(names | set(extra_keys)))})")
        kwargs[key] = _convert(hints[key], value, dotted)
    try:
        return cls(**kwargs, **extra)
    except TypeError as e:
        raise ConfigError(f"{path or 'config'}: {e}") from e


def _convert(tp: Any, value: Any, path: str) -> Any:
    if tp in (GeneratorSpec, DiscriminatorSpec):
        try:
            return spec_from_dict(value)
        except (TypeError, ConfigError) as e:
            raise ConfigError(f"{path}: {e}") from e
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            choices = ", ".join(repr(c) for c in typing.get_args(tp))
            raise ConfigError(f"{path}: {value!r} is not one of {choices}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(inner, value, path)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float) and isinstance(value, str):
        try:  # YAML 1.1 reads "1e-4" as a string; the field's type decides
            return tp(value)
        except ValueError:
            raise ConfigError(f"{path}: expected {tp.__name__}, got {value!r}") from None
    if tp in (int, float, str, bool) and not (isinstance(value, tp) and not (tp is int and isinstance(value, bool))):
        raise ConfigError(f"{path}: expected {tp.__name__}, got {value!r}")
    return value
