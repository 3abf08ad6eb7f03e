"""Presets with overrides on the command line: ``--preset small --model.patch_size 2``.

:func:`overrides_of` turns a config dataclass into one whose every field is optional (None
meaning "keep the preset's value"), so jsonargparse still checks every key and type, and
:func:`apply_overrides` lays the values that were given over the preset.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

T = TypeVar("T")
_CACHE: dict[type, type] = {}


def overrides_of(cls: type) -> type:
    """A dataclass with the fields of ``cls``, each typed ``X | None`` and defaulting to None."""
    if cls not in _CACHE:
        hints = typing.get_type_hints(cls)
        fields = [
            (f.name, hints[f.name] | None, dataclasses.field(default=None)) for f in dataclasses.fields(cls)
        ]
        overrides = dataclasses.make_dataclass(f"{cls.__name__}Overrides", fields)
        overrides.__doc__ = f"Fields of {cls.__name__} to change from the preset (unset: keep the preset's)."
        overrides.__module__ = cls.__module__
        _CACHE[cls] = overrides
    return _CACHE[cls]


def apply_overrides(base: T, overrides: Any) -> T:
    """``base`` with every field that ``overrides`` sets (not None) replaced."""
    if overrides is None:
        return base
    changes = {
        f.name: getattr(overrides, f.name)
        for f in dataclasses.fields(overrides)
        if getattr(overrides, f.name) is not None
    }
    return dataclasses.replace(base, **changes)
