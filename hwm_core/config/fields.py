"""A config key's spec and the check of its value, read off the field's real annotation.

Every section of the schema is a `Section`: constructing one (from a preset, from `--set`,
from code, by `dataclasses.replace`) checks each field against its annotation and spec and
then the section's own rules, so no config exists that was not checked. A broken key is a
`ConfigError` whose line starts with the dotted key ("model.d_model must be ..."); loading
puts the file it came from in front, so users read the same lines as before.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from ..errors import ConfigError


def spec(
    default: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    resume_safe: bool = False,
    doc: str = "",
) -> Any:
    """A schema field: its default, inclusive/exclusive bounds, whether a resumed run may
    change it (none that alters the model's shape or the data order may), and its doc.
    Allowed strings are the annotation's: a `Literal`."""
    meta = {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open, "resume_safe": resume_safe, "doc": doc}
    if isinstance(default, list):
        return field(default_factory=lambda: json.loads(json.dumps(default)), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Section:
    """A config section that checks itself on construction (see the module's doc)."""

    name: ClassVar[str]  # the section's name in a preset: [model], [train], ...

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, check_value(type(self), f.name, getattr(self, f.name)))
        self.check()

    def check(self) -> None:
        """Rules that tie this section's keys together; a broken one raises ConfigError."""


def field_types(cls: type) -> dict[str, Any]:
    """The section's fields' real types (the schema module writes them as strings)."""
    return _hints(cls)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _metadata(cls: type) -> dict[str, Any]:
    """Each field's spec (bounds, doc, ...) by its name, read once per section."""
    return _specs(cls)


@functools.cache
def _specs(cls: type) -> dict[str, Any]:
    return {f.name: f.metadata for f in dataclasses.fields(cls)}


def choices(annotation: Any) -> tuple[str, ...]:
    """The strings a `Literal` (alone or beside another type) allows; () if none."""
    if get_origin(annotation) is Literal:
        return tuple(get_args(annotation))
    if _is_union(annotation):
        return tuple(c for arg in get_args(annotation) for c in choices(arg))
    return ()


def type_name(annotation: Any) -> str:
    """How the schema table names a type: str for choices, int | str for a number or a word."""
    if get_origin(annotation) is Literal:
        return "str"
    if _is_union(annotation):
        return " | ".join(type_name(arg) for arg in get_args(annotation))
    if get_origin(annotation) is list:
        return "list"
    return annotation.__name__


def check_value(cls: type[Section], key: str, value: Any) -> Any:
    """The value `cls.key` holds when given `value` (an int for a float key becomes a float),
    or ConfigError: "section.key must be ..., got ..."."""
    annotation = field_types(cls)[key]
    meta = _metadata(cls)[key]
    where = f"{cls.name}.{key}"
    value = _coerce(value, annotation, where)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = meta.get("lo"), meta.get("hi")
        if isinstance(value, float) and math.isnan(value):
            raise ConfigError(f"{where} must be a number, got nan")
        if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
            bound = f"> {lo}" if meta.get("lo_open") else f">= {lo}"
            raise ConfigError(f"{where} must be {bound}, got {value}")
        if hi is not None and (value > hi or (meta.get("hi_open") and value == hi)):
            bound = f"< {hi}" if meta.get("hi_open") else f"<= {hi}"
            raise ConfigError(f"{where} must be {bound}, got {value}")
    return value


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    allowed = choices(annotation)
    if _is_union(annotation):  # a number or a word: train.batch_size = 8 or auto
        if isinstance(value, str) and value in allowed:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer or {' or '.join(allowed)}, got {value!r}")
        return value
    if get_origin(annotation) is Literal:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        if value not in allowed:
            raise ConfigError(f"{where} must be one of {', '.join(allowed)}, got {value!r}")
        return value
    if get_origin(annotation) is list:
        # A list's items are its section's rule to check: that line names the list's shape
        # ("split the FSQ digits ...", "a list of numbers") where a generic one could not.
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    raise TypeError(f"{where}: the schema has no check for {annotation!r}")


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def allowed_text(cls: type[Section], key: str) -> str:
    """Bounds and choices as the error lines state them ("" when any value of the type goes)."""
    meta = _metadata(cls)[key]
    parts = []
    if meta.get("lo") is not None:
        parts.append(f"{'>' if meta.get('lo_open') else '>='} {meta['lo']:g}")
    if meta.get("hi") is not None:
        parts.append(f"{'<' if meta.get('hi_open') else '<='} {meta['hi']:g}")
    allowed = choices(field_types(cls)[key])
    if allowed:
        parts.append(" | ".join(allowed))
    return ", ".join(parts)
