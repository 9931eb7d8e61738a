"""The test file as a stream: which rows the per-cell cap keeps, then those rows in chunks.

``predict.max_rows_per_cell`` keeps, in each (lang, dataset) cell, the ``cap`` rows of smallest seeded
rank (``mmm.split.rank_key``, ties by file position): :func:`select` finds them in one pass with a heap of
at most ``cap`` entries per cell, so memory grows with cells x cap, not with the file. The result
equals :func:`mmm.predict.cap_per_cell` on the whole list (tested).
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mmm.errors import require_file
from mmm.io import BOM, InputError, Problem
from mmm.records import FormatError, Sample
from mmm.split import rank_key


@dataclass(frozen=True)
class Selection:
    """What the first pass found: the file's rows, the positions kept (None: all) and its sha256."""

    test_rows: int
    chosen: frozenset[int] | None
    sha256: str

    @property
    def count(self) -> int:
        return self.test_rows if self.chosen is None else len(self.chosen)

    def keeps(self, position: int) -> bool:
        return self.chosen is None or position in self.chosen


def iter_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, bytes)`` of every non-blank line, read a line at a time."""
    require_file(path)
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                yield number, line


def parse_record(path: str | Path, number: int, line: bytes) -> dict:
    """One MMM record (checked like ``mmm.io.read_records``), or ``InputError`` naming its line."""
    def problem(message: str) -> InputError:
        return InputError([Problem(str(path), number, message)])

    if number == 1 and line.startswith(BOM):
        raise problem("starts with a UTF-8 byte order mark; save the file as UTF-8 without BOM")
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise problem(f"invalid UTF-8 (byte 0x{line[exc.start]:02x})") from None
    except json.JSONDecodeError as exc:
        raise problem(f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise problem(f"expected a JSON object, got {type(record).__name__}")
    try:
        Sample.from_record(record)
    except KeyError as exc:
        raise problem(f"missing field {exc.args[0]!r}" if exc.args else "missing field") from None
    except (FormatError, TypeError, ValueError) as exc:
        raise problem(str(exc)) from None
    return record


def select(path: str | Path, cap: int | None, seed: int) -> Selection:
    """One pass over ``path``: every record checked (all bad lines named at once), the kept positions, the sha256."""
    digest = hashlib.sha256()
    heaps: dict[tuple[str, str], list[tuple[int, int]]] = {}  # cell -> max-heap of (-rank, -position)
    problems: list[Problem] = []
    rows = 0
    with open(_checked(path), "rb") as fh:
        for number, line in enumerate(fh, start=1):
            digest.update(line)
            if not line.strip():
                continue
            try:
                record = parse_record(path, number, line)
            except InputError as exc:
                problems.extend(exc.problems)
                continue
            position, rows = rows, rows + 1
            if cap is not None:
                heap = heaps.setdefault((record["lang"], record["dataset"]), [])
                entry = (-rank_key(seed, record["id"]), -position)
                if len(heap) < cap:
                    heapq.heappush(heap, entry)
                elif entry > heap[0]:  # ranks before the largest kept one (ties: the earlier row wins)
                    heapq.heapreplace(heap, entry)
    if problems:
        raise InputError(problems)
    chosen = None if cap is None else frozenset(-p for heap in heaps.values() for _, p in heap)
    return Selection(rows, chosen, digest.hexdigest())


def chunks(path: str | Path, selection: Selection, size: int) -> Iterator[list[dict]]:
    """The kept records in file order, ``size`` at a time (the last chunk may be shorter)."""
    chunk: list[dict] = []
    position = 0
    for number, line in iter_lines(path):
        if selection.keeps(position):
            chunk.append(parse_record(path, number, line))
            if len(chunk) == size:
                yield chunk
                chunk = []
        position += 1
    if chunk:
        yield chunk


def _checked(path: str | Path) -> Path:
    require_file(path)
    return Path(path)
