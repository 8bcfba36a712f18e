"""The configuration files: one YAML file in our layout or the Go service's, and ENVIRONMENT's.

:func:`read_yaml` flattens a file's sections onto setting names (``cache: {ttl}`` is
``cache_ttl``) after renaming the Go service's keys (``_settings_go``), and reports unknown
keys; :func:`environment_file` normalises ``ENVIRONMENT`` and finds its ``config.{env}.yaml``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tokenpulse._settings_fields import ENVIRONMENTS
from tokenpulse._settings_go import translate as translate_go_keys

__all__ = ["Layer", "environment_file", "read_yaml"]


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{str(key).lower()}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}_"))
        else:
            flat[name] = value
    return flat


@dataclass(frozen=True)
class Layer:
    """One link of the precedence chain: its values, and where each came from."""

    origin: str
    values: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)  # per-key origin, if not ``origin``


def read_yaml(path: Path, fields: Mapping[str, object], problems: list[str]) -> Layer:
    """A YAML file in our layout or the Go service's (``_settings_go``), flattened."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(f"{path}: cannot read configuration file: {exc}")
        return Layer(str(path), {})
    if loaded is None:
        return Layer(str(path), {})
    if not isinstance(loaded, Mapping):
        problems.append(f"{path}: must be a mapping of settings")
        return Layer(str(path), {})
    flat = _flatten(loaded)
    labels = translate_go_keys(flat, str(path), problems)
    for key in [key for key in flat if key not in fields]:
        problems.append(f"{path}: unknown key {key!r}")
        del flat[key]
    return Layer(str(path), flat, labels)


def environment_file(raw: object, base_path: Path, problems: list[str]) -> tuple[str, Path]:
    """ENVIRONMENT trimmed and lower-cased, and its file; an unknown name without one is refused."""
    name = str(raw).strip().lower() or "development"
    env_path = base_path.with_name(f"config.{name}.yaml")
    if name not in ENVIRONMENTS and not env_path.exists():
        near = difflib.get_close_matches(name, ENVIRONMENTS, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        problems.append(
            f"ENVIRONMENT={raw!r}: must be one of {', '.join(ENVIRONMENTS)} "
            f"(any case), or a name with its own {env_path}{hint}"
        )
    return name, env_path
