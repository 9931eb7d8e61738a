"""Params profiles: a partial params file (e.g. ``params/paper.yaml``) deep-merged over ``params.yaml``.

A profile switches the whole pipeline to another configuration (the paper's sources, translator,
sizes and model) without editing code. ``params.yaml`` stays the one file DVC reads, so
``dvc repro`` / ``dvc status`` see exactly which stages the switch touches. The merge is
round-trip YAML: every comment and the layout of ``params.yaml`` survive, only values change.
A profile may only set keys ``params.yaml`` already has (a typo would otherwise be a silent
no-op), and the merged params must pass the typed models of ``mmm.config`` before anything is written.
"""

from __future__ import annotations

import difflib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmm import config
from mmm.errors import MMMError, ParamsError, require_file
from mmm.io import atomic_path


class ProfileError(MMMError, ValueError):
    """The profile cannot be applied (unknown keys, invalid merged params); nothing was written."""


@dataclass(frozen=True)
class Change:
    """One value the profile sets differently from ``params.yaml``."""

    key: str  # dotted, as DVC names params
    old: Any
    new: Any
    note: str = ""  # the profile's comment on the key (e.g. "not in the paper")

    def describe(self) -> str:
        line = f"{self.key}: {show(self.old)} -> {show(self.new)}"
        return f"{line}   # {self.note}" if self.note else line


@dataclass(frozen=True)
class Result:
    """What ``apply`` did: the changes, whether the file was written, what the user still has to provide."""

    changes: list[Change]
    written: bool
    notes: list[str]


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML()  # round-trip: comments, key order, quotes and flow style are kept
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never re-wrap long values
    yaml.representer.add_representer(type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    return yaml


def load(path: str | Path) -> Any:
    """A params file as round-trip YAML (a mapping that keeps its comments)."""
    from ruamel.yaml import YAMLError

    require_file(path, "a params or profile file")
    try:
        data = _yaml().load(Path(path).read_text(encoding="utf-8"))
    except YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, Mapping):
        raise ProfileError(f"{path}: expected a mapping of params sections")
    return data


def dump(data: Any) -> str:
    buffer = io.StringIO()
    _yaml().dump(data, buffer)
    return buffer.getvalue()


def plain(value: Any) -> Any:
    """Round-trip YAML nodes as plain dicts, lists and scalars."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return float(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    return str(value) if isinstance(value, str) else value


def show(value: Any) -> str:
    return json.dumps(plain(value), ensure_ascii=False)


def unknown_keys(base: Mapping, overlay: Mapping, prefix: str = "") -> list[str]:
    """Dotted keys of ``overlay`` that ``base`` lacks, each with close matches as a hint."""
    problems = []
    for key, value in overlay.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            close = difflib.get_close_matches(str(key), [str(k) for k in base], n=2)
            hint = f" (did you mean {' or '.join(prefix + c for c in close)}?)" if close else ""
            problems.append(f"{dotted}{hint}")
        elif isinstance(value, Mapping) and isinstance(base[key], Mapping):
            problems.extend(unknown_keys(base[key], value, f"{dotted}."))
    return problems


def _note(overlay: Mapping, key: Any) -> str:
    """The end-of-line comment the profile gives ``key`` (first line only), without the ``#``."""
    entry = getattr(overlay, "ca", None) and overlay.ca.items.get(key)
    token = entry[2] if entry and len(entry) > 2 else None
    text = getattr(token, "value", "") or ""
    first = text.split("\n", 1)[0].strip()
    return first.lstrip("#").strip() if first.startswith("#") else ""


def merge(base: Any, overlay: Mapping, prefix: str = "") -> list[Change]:
    """Set every leaf of ``overlay`` in ``base`` (in place); descend where both sides are mappings.

    Returns the values that actually differ. Call ``unknown_keys`` first: this assumes every key exists.
    """
    changes = []
    for key, new in overlay.items():
        dotted = f"{prefix}{key}"
        old = base[key]
        if isinstance(new, Mapping) and isinstance(old, Mapping):
            changes.extend(merge(old, new, f"{dotted}."))
        elif plain(old) != plain(new):
            changes.append(Change(dotted, plain(old), plain(new), _note(overlay, key)))
            base[key] = _bare(new, _is_flow(old) if isinstance(old, (Mapping, list)) else _is_flow(new))
    return changes


def _is_flow(value: Any) -> bool:
    if isinstance(value, (Mapping, list)) and not value:
        return True  # YAML writes an empty collection as [] or {}
    fa = getattr(value, "fa", None)
    return bool(fa and fa.flow_style())


def _bare(value: Any, flow: bool) -> Any:
    """``value`` without the profile's comments (``params.yaml`` keeps its own), in ``params.yaml``'s style."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, Mapping):
        copy: Any = CommentedMap((k, _bare(v, _is_flow(v))) for k, v in value.items())
    elif isinstance(value, list):
        copy = CommentedSeq(_bare(v, _is_flow(v)) for v in value)
    else:
        return value
    if flow:
        copy.fa.set_flow_style()
    else:
        copy.fa.set_block_style()
    return copy


def check(data: Mapping, source: str, root: Path) -> list[str]:
    """Every problem of the merged params, found by the same typed models every command loads."""
    try:
        config.validate(plain(data), source, root)
    except ParamsError as exc:
        return exc.lines()
    return []


def next_steps(params: config.Params) -> list[str]:
    """What the merged params still need from the user before ``dvc repro`` can run them."""
    notes = config.missing_inputs(params)
    if params.llm.backend == "openai":
        notes.append("llm.backend is openai: export OPENAI_API_KEY (and OPENAI_BASE_URL for another server) first")
    if params.hub.allow_network:
        notes.append("hub.allow_network is true: ingest and tconer_convert download from the Hugging Face hub")
    return notes


def apply(profile_path: str | Path, params_path: str | Path = "params.yaml", dry_run: bool = False) -> Result:
    """Merge the profile into the params file; with ``dry_run`` only report. Writes atomically or not at all."""
    params_path = Path(params_path)
    base, overlay = load(params_path), load(profile_path)
    unknown = unknown_keys(base, overlay)
    if unknown:
        raise ProfileError(f"{profile_path} sets {len(unknown)} key(s) that {params_path} does not have "
                           f"(add them to {params_path} first): " + "; ".join(unknown))
    changes = merge(base, overlay)
    problems = check(base, f"{params_path} merged with {profile_path}", params_path.parent)
    if problems:
        raise ProfileError(f"{profile_path} would make {params_path} invalid, nothing was written:", *problems)
    notes = next_steps(config.validate(plain(base), str(params_path), params_path.parent))
    if dry_run or not changes:
        return Result(changes, False, notes)
    text = dump(base)
    with atomic_path(params_path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Result(changes, True, notes)
