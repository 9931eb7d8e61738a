"""Reading ``params.yaml``: one section per stage, dotted keys as DVC names them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

DEFAULT_PARAMS = Path("params.yaml")


def load(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """The params file as plain data, read by YAML 1.2 rules like DVC reads it.

    `dvc exp run -S` rewrites params.yaml without quotes where YAML 1.2 needs none
    (``mixed_precision: "no"`` becomes ``no``); a YAML 1.1 reader would then see ``False``.
    Reading as DVC does keeps the stages, dvc.lock and ``${...}`` interpolation in agreement.
    """
    from ruamel.yaml import YAML

    with open(path, encoding="utf-8") as fh:
        data = YAML(typ="safe", pure=True).load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of stage sections")
    return data


def section(name: str, path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """The ``name`` section of the params file; a clear error if it is missing."""
    data = load(path)
    if name not in data:
        raise KeyError(f"{path}: no '{name}' section (sections: {', '.join(data)})")
    return data[name]


def foreach_item(section_name: str, key: str | None, path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """The ``section_name.items.<key>`` entry a DVC ``foreach`` stage was started for.

    Stage scripts get ``key`` from their command line; a missing or unknown key exits with a
    message that names the section and every known item, so a typo in ``dvc.yaml`` or a by-hand
    run is fixed at once.
    """
    items = section(section_name, path).get("items") or {}
    known = ", ".join(items) or "none"
    if key is None:
        raise SystemExit(f"usage: python {sys.argv[0]} ITEM   (ITEM: one of {path} {section_name}.items: {known})")
    if key not in items:
        raise SystemExit(f"{path} {section_name}.items has no {key!r} (items: {known})")
    return items[key]
