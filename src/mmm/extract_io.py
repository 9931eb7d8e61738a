"""``mmm extract``'s many-text input and its JSON Lines output.

Input is a file or stdin (``-``) in one of two forms:

* ``jsonl``: one object per line with ``text`` and optionally ``id`` (string or integer), ``task``,
  ``dataset`` and ``labels`` (a list of word-level labels); a row's fields override the command's flags.
* ``lines``: one plain text per line (blank lines skipped); the flags apply to every text.

``auto`` reads a ``.jsonl`` file as JSONL, a ``.txt`` file as lines, and anything else (stdin) as JSONL
when its first non-blank line starts with ``{``. Every row is checked before a model is loaded: a bad row
(invalid JSON, a missing or empty text, an unknown key, task or dataset, labels without a constrained mode)
is an ``InputError`` naming ``file:line``, all of them at once.

Each output row is ``{"id", "line", "task", "dataset", "text_label", "pairs", "raw", "finish", "error"}``
in input order: ``pairs`` are lists (``[label, entity]``, TCREE ``[head, label, tail]``), ``error`` is
why ``raw`` does not parse (then ``text_label`` and ``pairs`` are null).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from mmm.errors import MMMError
from mmm.io import InputError, Problem, decode_utf8, read_text
from mmm.predict import Extraction, Request, request_spec

InputFormat = Literal["auto", "jsonl", "lines"]
INPUT_FORMATS: tuple[str, ...] = get_args(InputFormat)
ROW_KEYS = ("text", "id", "task", "dataset", "labels")
STDIN = "-"


@dataclass(frozen=True)
class Row:
    """A request and the input line it came from (1-based)."""

    line: int
    request: Request


def read_source(source: str) -> tuple[str, str]:
    """``(name for errors, text)`` of a file or of stdin (``-``), under the reader contract (UTF-8, no BOM)."""
    if source == STDIN:
        stream = getattr(sys.stdin, "buffer", None)
        data = stream.read() if stream is not None else sys.stdin.read().encode("utf-8")
        return "<stdin>", decode_utf8("<stdin>", data)
    return source, read_text(source)


def detect_format(name: str, text: str, fmt: str = "auto") -> str:
    if fmt not in INPUT_FORMATS:
        raise ValueError(f"input format must be one of {', '.join(INPUT_FORMATS)}, got {fmt!r}")
    if fmt != "auto":
        return fmt
    suffix = Path(name).suffix.lower() if name != "<stdin>" else ""
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".txt":
        return "lines"
    first = next((line for line in text.split("\n") if line.strip()), "")
    return "jsonl" if first.lstrip().startswith("{") else "lines"


def parse_rows(name: str, text: str, fmt: str, task: str = "NER", dataset: str | None = None,
               labels: Sequence[str] | None = None, constrained: str = "off", lang: str | None = None) -> list[Row]:
    """The requests of an input text, each checked as ``mmm extract`` will run it; ``InputError`` lists every bad line."""
    fmt = detect_format(name, text, fmt)
    default_labels = None if labels is None else tuple(labels)
    rows: list[Row] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            if fmt == "lines":
                request = Request(line, task, dataset, default_labels)
            else:
                request = _request(line, task, dataset, default_labels)
            request_spec(request, constrained, lang)
        except (MMMError, ValueError) as exc:
            problems.append(Problem(name, number, " ".join(str(exc).split())))
            continue
        rows.append(Row(number, request))
    if problems:
        raise InputError(problems)
    return rows


class RowError(ValueError):
    """What is wrong with one JSONL row."""


def _request(line: str, task: str, dataset: str | None, labels: tuple[str, ...] | None) -> Request:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RowError(f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise RowError(f"expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(ROW_KEYS))
    if unknown:
        raise RowError(f"unknown key(s) {', '.join(map(repr, unknown))}; a row may have {', '.join(ROW_KEYS)}")
    text = obj.get("text")
    if not isinstance(text, str):
        raise RowError("'text' must be a string" if "text" in obj else "missing 'text'")
    rid = obj.get("id")
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, (str, int))):
        raise RowError(f"'id' must be a string or an integer, got {type(rid).__name__}")
    for key in ("task", "dataset"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise RowError(f"{key!r} must be a string, got {type(obj[key]).__name__}")
    row_labels: Any = obj.get("labels", labels)
    if row_labels is not None:
        if not isinstance(row_labels, (list, tuple)) or not all(isinstance(x, str) for x in row_labels):
            raise RowError("'labels' must be a list of strings")
        row_labels = tuple(row_labels)
    return Request(text, obj.get("task") or task, obj.get("dataset") or dataset, row_labels,
                   None if rid is None else str(rid))


def output_row(row: Row | None, result: Extraction, request: Request) -> dict[str, Any]:
    """One JSON Lines output row (``row`` None: a single TEXT given on the command line)."""
    return {
        "id": request.id,
        "line": None if row is None else row.line,
        "task": request.task,
        "dataset": result.dataset,
        "text_label": result.text_label,
        "pairs": None if result.pairs is None else [list(p) for p in result.pairs],
        "raw": result.raw,
        "finish": result.finish,
        "error": result.error,
    }
