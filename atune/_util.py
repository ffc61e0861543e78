"""Small helpers shared across modules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["flatten_dict"]


def flatten_dict(data: Mapping[str, Any], prefix: str = "", sep: str = "/") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a/b": 1}``; empty dicts stay values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            out.update(flatten_dict(value, f"{prefix}{key}{sep}", sep))
        else:
            out[f"{prefix}{key}"] = value
    return out
