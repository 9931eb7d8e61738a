"""Reading and writing records: JSONL in, JSONL/JSON out (atomic, see ``mmm.publish``), errors with file:line.

Readers collect *every* problem in a file before raising, so a user fixes bad input in one
pass instead of one error per run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mmm.errors import MMMError, require_file
from mmm.publish import atomic_path
from mmm.records import FormatError, Sample

T = TypeVar("T")
MAX_LISTED_ERRORS = 50


@dataclass(frozen=True)
class Problem:
    """One bad row: where it is and what is wrong with it."""

    path: str
    line: int  # 1-based; 0 when the problem is the whole file
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path  # line 0: the file as a whole
        return f"{where}: {self.message}"


class InputError(MMMError, ValueError):
    """Bad input file(s); ``problems`` lists every bad row found (``Problem``: file, line, what)."""

    max_listed = MAX_LISTED_ERRORS

    def __init__(self, problems: list[Problem]):
        super().__init__(*problems)


BOM = b"\xef\xbb\xbf"


def check_bom(path: str | Path, data: bytes) -> None:
    """``InputError`` naming line 1 if ``data`` starts with a UTF-8 byte order mark."""
    if data.startswith(BOM):
        raise InputError([Problem(str(path), 1, "starts with a UTF-8 byte order mark; save the file as UTF-8 without BOM")])


def decode_utf8(path: str | Path, data: bytes) -> str:
    """``data`` as text, or ``InputError`` naming the line of a byte order mark or of invalid UTF-8.

    The reader contract's byte-level half, shared by every JSONL reader (the Python one here, the
    polars ones in ``mmm.filters`` and ``mmm.evaluation.predictions``, TCONER's source reader):
    one decode of the whole buffer, and the line is located only when it fails. (polars validates
    UTF-8 itself, so its readers call ``check_bom`` first and this only when polars refuses a file.)
    """
    check_bom(path, data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, start) + 1
        column = len(data[start:exc.start].decode("utf-8")) + 1  # characters before the bad byte, which decode
        byte = data[exc.start]
        raise InputError([Problem(str(path), line, f"invalid UTF-8 (byte 0x{byte:02x} at column {column})")]) from None


def read_text(path: str | Path) -> str:
    """The text of an existing file under the reader contract (``decode_utf8``)."""
    require_file(path)
    return decode_utf8(path, Path(path).read_bytes())


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any | Problem]]:
    """Yield ``(line_number, object)`` for each non-blank line, or a ``Problem`` for invalid JSON.

    Lines end at ``\\n`` only, as polars counts them. A BOM or invalid UTF-8 raises ``InputError`` first.
    """
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, Problem(str(path), number, f"invalid JSON ({exc.msg} at column {exc.colno})")


def read_rows(path: str | Path, convert: Callable[[dict], T]) -> list[T]:
    """Read a JSONL file, apply ``convert`` to every object, raise ``InputError`` listing all failures."""
    rows: list[T] = []
    problems: list[Problem] = []
    for number, obj in iter_jsonl(path):
        if isinstance(obj, Problem):
            problems.append(obj)
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(str(path), number, f"expected a JSON object, got {type(obj).__name__}"))
            continue
        try:
            rows.append(convert(obj))
        except (FormatError, KeyError, TypeError, ValueError) as exc:
            problems.append(Problem(str(path), number, _message(exc)))
    if problems:
        raise InputError(problems)
    return rows


def read_records(path: str | Path) -> list[dict]:
    """Read MMM records, checking each parses; returns the dicts (extra fields kept)."""

    def check(record: dict) -> dict:
        Sample.from_record(record)
        return record

    return read_rows(path, check)


def check_record_files(paths: Iterable[str | Path]) -> int:
    """Count the records of every file; raise one ``InputError`` listing the bad rows of all of them."""
    problems: list[Problem] = []
    total = 0
    for path in paths:
        try:
            total += len(read_records(path))
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    return total


def read_samples(path: str | Path) -> list[Sample]:
    """Read MMM records as parsed ``Sample`` objects."""
    return read_rows(path, Sample.from_record)


def _message(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}" if exc.args else "missing field"
    return str(exc)


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> int:
    """Write rows as JSONL atomically; returns the number of rows written."""
    count = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=_plain) + "\n")
            count += 1
    return count


def write_json(path: str | Path, obj: Any) -> None:
    """Write pretty JSON atomically (metrics files, summaries)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=False, default=_plain) + "\n", encoding="utf-8")


def table_text(rows: Iterable[dict]) -> str:
    """Rows as one JSON list, a row per line: plot data as ``dvc plots`` reads it (numbers stay numbers),
    and a changed row is a changed line in ``git diff``."""
    lines = [json.dumps(row, ensure_ascii=False, default=_plain) for row in rows]
    return "[\n" + ",\n".join(lines) + ("\n]\n" if lines else "]\n")


def write_table(path: str | Path, rows: Iterable[dict]) -> None:
    """Write ``table_text(rows)`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(table_text(rows), encoding="utf-8")


def write_yaml(path: str | Path, data: dict[str, Any], header: str = "") -> None:
    """Write a hand-editable YAML file atomically: ``header`` (comments) then ``data`` in insertion order."""
    import yaml

    body = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    with atomic_path(path) as tmp:
        tmp.write_text(header + body, encoding="utf-8")


def _plain(value: Any) -> Any:
    """JSON for the values configs carry: paths as POSIX strings."""
    if isinstance(value, Path):
        return value.as_posix()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def portable_path(path: str | Path) -> str:
    """How a path is recorded in written files: relative to the working directory when inside it,
    else as given if relative, else only its name (where a checkout lives is no property of a model)."""
    path = Path(path)
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.name
