"""Reading ``params.yaml``: one section per stage, dotted keys as DVC names them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEFAULT_PARAMS = Path("params.yaml")


def load(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of stage sections")
    return data


def section(name: str, path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """The ``name`` section of the params file; a clear error if it is missing."""
    data = load(path)
    if name not in data:
        raise KeyError(f"{path}: no '{name}' section (sections: {', '.join(data)})")
    return data[name]
