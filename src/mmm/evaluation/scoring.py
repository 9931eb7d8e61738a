"""Algorithm 1 over a whole predictions table at once: per-row TL/WL/ALL counts as polars columns.

Same semantics as ``algorithm1`` (the tests hold the two together), but expressed as column
operations so that hundreds of thousands of rows cost a fraction of a second. Pieces are kept as
strings: ``tuple(piece.split(";"))`` is a bijection of ``piece``, so comparing the strings
compares the tuples.

Work is done per partition of rows sharing a sub-dataset and instruction word, so the marker is a
literal pattern and TCREE's keep-whole rule a Python branch. ``parse`` gives the columns both the
counts and the audits need, so a prediction is parsed once.
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from mmm import registry
from mmm.evaluation.algorithm1 import (
    DELIMITERS,
    FULL_WIDTH,
    LEVELS,
    WHITESPACE,
    WHITESPACE_RUN,
    Mode,
    marker_of,
)

COUNT_COLUMNS: tuple[str, ...] = tuple(f"{level}_{what}" for level in LEVELS for what in ("tp", "gen", "real"))


def keep_whole(dataset: str) -> bool:
    """TCREE's single ``head;label;tail`` triple is one piece (Algorithm 1's ``is_ttree``)."""
    return registry.kind(dataset).word_level == "triple"


def normalized(text: pl.Expr) -> pl.Expr:
    """``algorithm1.normalize`` as an expression.

    Once runs are single spaces, dropping the spaces beside ``:;/`` is six literal replacements,
    about twice as fast as the capture-group regex (the tests check they agree).
    """
    for wide, narrow in FULL_WIDTH.items():
        text = text.str.replace_all(wide, narrow, literal=True)
    text = text.str.replace_all(WHITESPACE_RUN, " ")
    for delimiter in DELIMITERS:
        text = text.str.replace_all(" " + delimiter, delimiter, literal=True)
        text = text.str.replace_all(delimiter + " ", delimiter, literal=True)
    return text


# Matches wherever ``normalized`` changes something: full-width delimiters, whitespace other than
# one plain space, a space beside a delimiter. Rows without a match skip the nine replacements.
NEEDS_NORMALIZING = "|".join(
    [
        f"[{''.join(FULL_WIDTH)}]",
        f"[{WHITESPACE}]{{2}}",
        f"[{WHITESPACE.replace(' ', '')}]",
        f" [{DELIMITERS}]",
        f"[{DELIMITERS}] ",
    ]
)


def _normalized_texts(part: pl.DataFrame) -> pl.DataFrame:
    """``output`` and ``prediction`` normalized, in ``part``'s row order, computed only where needed."""
    needs = pl.col("output").str.contains(NEEDS_NORMALIZING) | pl.col("prediction").str.contains(NEEDS_NORMALIZING)
    texts = part.select("output", "prediction", needs=needs, order=pl.int_range(pl.len()))
    changed = texts.filter("needs").with_columns(normalized(pl.col("output")), normalized(pl.col("prediction")))
    return pl.concat([texts.filter(~pl.col("needs")), changed]).sort("order").select("output", "prediction")


def split_on_marker(text: pl.Expr, marker: str) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """``(has_marker, label, word_part)``: the text before (stripped) and after the first marker.

    Without the marker nothing was generated: the label and the word-level part are empty.
    """
    halves = text.str.splitn(marker, 2)
    has_marker = halves.struct.field("field_1").is_not_null()
    label = pl.when(has_marker).then(halves.struct.field("field_0").str.strip_chars(WHITESPACE)).otherwise(pl.lit(""))
    return has_marker, label, halves.struct.field("field_1").fill_null("")


def raw_pieces(word_part: pl.Expr, whole: bool) -> pl.Expr:
    """Stripped, non-empty pieces in order, duplicates kept (the audits count repeats)."""
    pieces = pl.concat_list([word_part]) if whole else word_part.str.split(":")
    stripped = pieces.list.eval(pl.element().str.strip_chars(WHITESPACE))
    return stripped.list.eval(pl.element().filter(pl.element() != ""))


def parse(part: pl.DataFrame, instruct: str, whole: bool, mode: Mode) -> pl.DataFrame:
    """Parsed gold and prediction of rows sharing ``instruct`` and the keep-whole rule.

    Columns: ``row``; ``gold_label``, ``gold_pairs``, ``label``, ``pairs`` as scored (in ``mode``);
    ``has_marker``, ``raw_label``, ``word_part``, ``pieces`` from the raw prediction, for audits.
    """
    marker = marker_of(instruct)
    has_marker, raw_label, word_part = split_on_marker(pl.col("prediction"), marker)
    scored = part if mode == "paper" else _normalized_texts(part)
    _, gold_label, gold_part = split_on_marker(pl.col("output"), marker)
    gold = scored.select(gold_label=gold_label, gold_pairs=raw_pieces(gold_part, whole).list.unique())
    raw = part.select(
        "row", has_marker=has_marker, raw_label=raw_label, word_part=word_part, pieces=raw_pieces(word_part, whole)
    )
    if mode == "paper":
        predicted = raw.select(label=pl.col("raw_label"), pairs=pl.col("pieces").list.unique())
    else:
        _, label, scored_part = split_on_marker(pl.col("prediction"), marker)
        predicted = scored.select(label=label, pairs=raw_pieces(scored_part, whole).list.unique())
    return pl.concat([raw, gold, predicted], how="horizontal")


def counts(parsed: pl.DataFrame) -> pl.DataFrame:
    """Per-row ``TL_tp, TL_gen, TL_real, WL_…, ALL_…`` (and ``row``) from ``parse``'s columns."""
    label_gen = pl.col("label") != ""
    label_hit = label_gen & (pl.col("label") == pl.col("gold_label"))
    label_real = pl.col("gold_label") != ""
    wl_tp = pl.col("pairs").list.set_intersection("gold_pairs").list.len()
    wl_gen, wl_real = pl.col("pairs").list.len(), pl.col("gold_pairs").list.len()
    same_pairs = (wl_tp == wl_gen) & (wl_tp == wl_real)
    values = (label_hit, label_gen, label_real, wl_tp, wl_gen, wl_real, label_hit & same_pairs, label_gen, label_real)
    return parsed.select("row", *(value.cast(pl.Int64).alias(name) for name, value in zip(COUNT_COLUMNS, values)))


def partitions(frame: pl.DataFrame) -> Iterator[tuple[str, str, pl.DataFrame]]:
    """``(dataset, instruct, rows)`` for each group of rows parsed alike (all languages together)."""
    for (dataset, instruct), part in frame.partition_by(["dataset", "word"], as_dict=True).items():
        yield dataset, instruct, part


def row_counts(frame: pl.DataFrame, mode: Mode) -> pl.DataFrame:
    """Per-row counts in row order; ``frame`` needs ``row, lang, dataset, word, output, prediction``."""
    parts = [
        counts(parse(part, instruct, keep_whole(dataset), mode))
        for dataset, instruct, part in partitions(frame)
    ]
    if not parts:
        return pl.DataFrame(schema={"row": pl.Int64, **{c: pl.Int64 for c in COUNT_COLUMNS}})
    return pl.concat(parts).sort("row")
