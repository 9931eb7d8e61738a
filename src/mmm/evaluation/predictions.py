"""Reading a predictions JSONL into a checked polars table, with errors that name the line.

Good files take the fast path (polars parses the JSON); any structural doubt (invalid JSON, a
missing or null field) re-reads the file line by line with ``mmm.io.iter_jsonl`` so that every
bad line is listed at once. The gold side must be well formed (known lang and dataset, an input
ending with its dataset's instruction word, a gold output with the marker, unique ids); the
prediction may be anything at all: garbage is a miss and an audit count, never an error.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from mmm import registry
from mmm.evaluation.algorithm1 import WHITESPACE
from mmm.filters import non_string_suspects
from mmm.io import InputError, Problem, check_bom, iter_jsonl
from mmm.records import field_problems, instruction_of, type_problem

FIELDS: tuple[str, ...] = ("id", "lang", "dataset", "input", "output", "prediction")
# Optional: the training target the predict stage records (joint | text_only | word_only).
TARGET_FIELD = "target"
SCHEMA = pl.Schema({name: pl.String for name in (*FIELDS, TARGET_FIELD)})


def read(path: str | Path) -> pl.DataFrame:
    """The rows of ``path`` with ``row`` (0-based, file order) and the instruction ``word``.

    Raises ``InputError`` listing every malformed line; ``FileNotFoundError`` if there is no file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such predictions file")
    data = path.read_bytes()
    check_bom(path, data)  # the reader contract; UTF-8 is checked by polars, or by iter_jsonl when polars refuses
    frame = _fast_read(data)
    lines: list[int] | None = None  # line number of each row, computed only when needed
    if frame is None:
        frame, lines = _careful_read(path)
    if frame.height == 0:
        raise InputError([Problem(str(path), 0, "no predictions in file")])
    words = _instruction_words(frame["input"])
    frame = frame.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64), word=words)
    found = _check(frame)
    if found:
        lines = lines or _row_lines(path)
        problems = [
            Problem(str(path), lines[row], message if first is None else f"{message} (first at line {lines[first]})")
            for row, message, first in found
        ]
        raise InputError(sorted(problems, key=lambda p: p.line))
    return frame


def declared_targets(frame: pl.DataFrame) -> list[str]:
    """The distinct ``target`` values the rows declare (empty when the field is absent)."""
    return sorted(frame[TARGET_FIELD].drop_nulls().unique().to_list())


def _fast_read(data: bytes) -> pl.DataFrame | None:
    """Polars' reader; ``None`` when the file needs the careful, line-numbered read (which also
    settles the values polars turned into strings: a number, boolean, array or object in a field)."""
    try:
        frame = pl.read_ndjson(data, schema=SCHEMA)
    except (pl.exceptions.PolarsError, ValueError):
        return None
    has_null = frame.select(pl.any_horizontal(pl.col(FIELDS).is_null()).any()).item()
    return None if has_null or non_string_suspects(frame, SCHEMA.names()).any() else frame


def _row_lines(path: Path) -> list[int]:
    """Line numbers of the non-blank lines, i.e. of the rows polars read."""
    with open(path, "rb") as fh:
        return [number for number, line in enumerate(fh, start=1) if line.strip()]


def _careful_read(path: Path) -> tuple[pl.DataFrame, list[int]]:
    rows: dict[str, list[str | None]] = {name: [] for name in SCHEMA}
    lines: list[int] = []
    problems: list[Problem] = []
    for number, obj in iter_jsonl(path):
        if isinstance(obj, Problem):
            problems.append(obj)
        elif not isinstance(obj, dict):
            problems.append(Problem(str(path), number, f"expected a JSON object, got {type(obj).__name__}"))
        elif bad := [*field_problems(obj, FIELDS), *filter(None, [type_problem(TARGET_FIELD, obj.get(TARGET_FIELD))])]:
            problems.append(Problem(str(path), number, "; ".join(bad)))
        else:
            for name in SCHEMA:
                rows[name].append(obj.get(name))
            lines.append(number)
    if problems:
        raise InputError(problems)
    return pl.DataFrame(rows, schema=SCHEMA), lines


def _instruction_words(inputs: pl.Series) -> pl.Series:
    """``records.instruction_of`` for every input, calling it once per distinct final ``/…`` segment.

    Instruction words contain no ``/``, so an input ends with ``/WORD`` exactly when its last
    ``/``-segment is ``WORD``; the distinct segments are few.
    """
    longest = max(len(word) for word in registry.all_instructions())
    tails = inputs.str.tail(longest + 1).str.extract(r"/([^/]*)$", 1)  # a longer last segment is no word anyway
    known = {tail: instruction_of("/" + tail) for tail in tails.drop_nulls().unique().to_list()}
    return tails.replace_strict(known, default=None, return_dtype=pl.String).alias("word")


def _check(frame: pl.DataFrame) -> list[tuple[int, str, int | None]]:
    """``(row, message, earlier_row)`` for every gold-side problem (vectorised); ``earlier_row`` for duplicates."""
    found: list[tuple[int, str, int | None]] = []

    def report(mask: pl.Expr, message: pl.Expr) -> None:
        hits = frame.filter(mask).select("row", message.alias("message"))
        found.extend((row, text, None) for row, text in hits.iter_rows())

    langs, datasets = ", ".join(registry.LANGS), ", ".join(registry.DATASETS)
    report(
        ~pl.col("lang").is_in(registry.LANGS),
        pl.format("unknown lang '{}'; expected one of {}", "lang", pl.lit(langs)),
    )
    report(
        ~pl.col("dataset").is_in(registry.DATASETS),
        pl.format("unknown dataset '{}'; expected one of {}", "dataset", pl.lit(datasets)),
    )
    with_word = pl.lit(False)  # rows whose input ends with an instruction word of their dataset
    for dataset in registry.DATASETS:
        words = registry.kind(dataset).instructions
        expected = " or ".join(f"'/{w}'" for w in words)
        is_dataset = pl.col("dataset") == dataset
        report(
            is_dataset & (pl.col("word").is_null() | ~pl.col("word").is_in(words)),
            pl.lit(f"input does not end with the instruction {expected} of {dataset}"),
        )
        with_word = with_word | (is_dataset & pl.col("word").is_in(words))
    marker = pl.lit("/") + pl.col("word") + pl.lit("/")
    report(
        with_word & ~pl.col("output").str.contains(marker, literal=True),
        pl.format("gold output lacks the instruction marker '{}'", marker),
    )
    # The label (text before the first marker) is blank exactly when the left-stripped output starts with the marker.
    report(
        with_word & pl.col("output").str.strip_chars_start(WHITESPACE).str.starts_with(marker),
        pl.lit("gold output has an empty text label"),
    )
    duplicated = frame.filter(pl.struct("lang", "dataset", "id").is_duplicated())
    if duplicated.height:
        with_first = duplicated.with_columns(first=pl.col("row").min().over(["lang", "dataset", "id"]))
        later = with_first.filter(pl.col("row") != pl.col("first")).select("row", "id", "lang", "dataset", "first")
        found.extend(
            (row, f"duplicate id '{id_}' in {lang}/{dataset}", first_row)
            for row, id_, lang, dataset, first_row in later.iter_rows()
        )
    return found
