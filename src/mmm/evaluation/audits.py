"""Audits reported beside F1: how a model fails, not only how often it is right.

Each audit is a per-row flag over the *raw* prediction (the same in paper and normalized mode).
The word-level grammar below mirrors the strict parser ``mmm.records.parse_word_part`` as two
regular expressions so that it runs vectorised; the tests check the two agree on arbitrary
strings, so ``records`` stays the authority on the format.
"""

from __future__ import annotations

import polars as pl

from mmm import registry
from mmm.evaluation.algorithm1 import WHITESPACE, Target, marker_of
from mmm.evaluation.scoring import keep_whole

AUDITS: dict[str, str] = {
    "empty_output": "the prediction is empty or whitespace",
    "missing_marker": "a non-empty prediction without '/WORD/' (scored as nothing generated)",
    "unparseable_pairs": "the word-level part breaks the strict ':label;entity' (TCREE ':head;label;tail') grammar",
    "text_label_outside_inventory": "the text label is not one of the sub-dataset's labels in that language",
    "word_label_outside_inventory": "a word-level label (of a well-formed part) is not in the sub-dataset's inventory",
    "entity_not_in_text": "an entity (TCREE: head or tail) of a well-formed part is not a span of the input text",
    "duplicate_pairs": "a word-level piece is repeated (sets count it once)",
    "runaway_repetition": "the marker appears again, or one piece repeats at least `repeat_min` times",
}

# Whole word-level part (what follows the marker) accepted by records.parse_word_part.
PAIR_GRAMMAR = r"^(?::[^/:;]+;[^;]+)*$"
TRIPLE_GRAMMAR = r"^(?::[^;]+;[^/:;]+;[^;]+)?$"
# In a well-formed pair part each label sits between a ':' and the next ';' with no ':' between.
PAIR_LABEL = r":[^/:;]+;"


def _word_fields(word_part: pl.Expr, whole: bool) -> tuple[pl.Expr, pl.Expr]:
    """``(labels, entities)`` lists of a well-formed word-level part (as the strict parser reads it)."""
    if whole:
        fields = word_part.str.slice(1).str.split(";")
        get = lambda i: fields.list.get(i, null_on_oob=True)  # noqa: E731
        nothing = pl.lit([], dtype=pl.List(pl.String))
        labels = pl.when(word_part != "").then(pl.concat_list([get(1)])).otherwise(nothing)
        return labels, pl.when(word_part != "").then(pl.concat_list([get(0), get(2)])).otherwise(nothing)
    labels = word_part.str.extract_all(PAIR_LABEL).list.eval(pl.element().str.slice(1).str.head(-1))
    # ":l1;e1:l2;e2" + ":" split on ";" gives ":l1", "e1:l2", "e2:"; each entity ends at its chunk's last ':'.
    chunks = (word_part + pl.lit(":")).str.split(";").list.slice(1)
    return labels, chunks.list.eval(pl.element().str.replace(r":[^:]*$", ""))


def _outside(values: pl.Expr, inventories: dict[str, tuple[str, ...]]) -> pl.Expr:
    """Whether ``values`` is missing from the inventory of its row's ``lang``."""
    outside = pl.lit(False)
    for lang, inventory in inventories.items():
        outside = outside | ((pl.col("lang") == lang) & ~values.is_in(list(inventory)))
    return outside


def _rows_where(rows: pl.Series, words: pl.DataFrame, values: str, bad: pl.Expr) -> pl.Series:
    """For each of ``rows``, whether an element of list column ``values`` of ``words`` is ``bad``."""
    hits = words.select("row", "lang", "text", values).explode(values).filter(bad)["row"]
    return rows.is_in(hits.implode())


def flags(
    part: pl.DataFrame, parsed: pl.DataFrame, dataset: str, instruct: str, target: Target, repeat_min: int
) -> pl.DataFrame:
    """One boolean column per audit for the rows of one partition (``scoring.parse`` gave ``parsed``)."""
    kind = registry.kind(dataset)
    whole = keep_whole(dataset)
    marker = marker_of(instruct)
    prediction, word_part = pl.col("prediction"), pl.col("word_part")
    scores_text, scores_words = target != "word_only", target != "text_only"
    frame = pl.concat(
        [
            parsed.select("row", "raw_label", "word_part", "pieces", "has_marker"),
            part.select(
                "lang",
                text=pl.col("input").str.head(-(len(instruct) + 1)),
                empty=prediction.str.strip_chars(WHITESPACE) == "",
                markers=prediction.str.count_matches(marker, literal=True),
            ),
        ],
        how="horizontal",
    )
    given = pl.col("has_marker") & scores_words  # a word-level part to audit
    well_formed = given & word_part.str.contains(TRIPLE_GRAMMAR if whole else PAIR_GRAMMAR)
    label = pl.col("raw_label")
    outside_text = pl.lit(False)
    if scores_text and not kind.open_domain:
        outside_text = (label != "") & _outside(label, kind.text_labels)
    frame = frame.with_columns(
        well_formed=well_formed,
        unparseable_pairs=given & ~well_formed,
        text_label_outside_inventory=outside_text,
        missing_marker=~pl.col("has_marker") & ~pl.col("empty"),
        repeats=pl.col("pieces").list.len() > pl.col("pieces").list.n_unique(),
    )
    rows = frame["row"]
    labels, entities = _word_fields(word_part, whole)
    words = frame.filter(pl.col("well_formed") & (word_part != "")).select(
        "row", "lang", "text", labels.alias("labels"), entities.alias("entities")
    )
    if scores_words and not kind.open_domain:
        outside_word = _rows_where(rows, words, "labels", _outside(pl.col("labels"), kind.word_labels))
    else:
        outside_word = pl.Series([False] * frame.height, dtype=pl.Boolean)
    not_a_span = ~pl.col("text").str.contains(pl.col("entities"), literal=True)
    missing_entity = _rows_where(rows, words, "entities", not_a_span)
    # Most copies of one piece in a row, looked up only where some piece repeats.
    most_copies = (
        frame.filter("repeats").select("row", "pieces").explode("pieces").group_by("row", "pieces").len()
        .group_by("row").agg(pl.col("len").max().alias("most"))
    )
    most = frame.select("row").join(most_copies, on="row", how="left", maintain_order="left")["most"].fill_null(0)
    return frame.select(
        "row",
        empty_output="empty",
        missing_marker="missing_marker",
        unparseable_pairs="unparseable_pairs",
        text_label_outside_inventory="text_label_outside_inventory",
        word_label_outside_inventory=outside_word,
        entity_not_in_text=missing_entity,
        duplicate_pairs=most >= 2,
        runaway_repetition=(pl.col("markers") > 1) | (most >= repeat_min),
    )


def summarize(frame: pl.DataFrame, flags: pl.DataFrame, max_examples: int) -> dict[str, dict[str, dict]]:
    """``{lang: {dataset: {audit: {"count", "examples"}}}}``; examples are the first ids in file order."""
    joined = frame.select("row", "id", "lang", "dataset").join(flags, on="row").sort("row")
    keys = ["lang", "dataset"]
    sums = joined.group_by(keys).agg(pl.col(list(AUDITS)).sum())
    counts = {(lang, dataset): row for lang, dataset, *row in sums.iter_rows()}
    examples = {
        (name, lang, dataset): ids
        for name in AUDITS
        for lang, dataset, ids in joined.filter(name).group_by(keys).agg(pl.col("id").head(max_examples)).iter_rows()
    }
    return {
        lang: {
            dataset: {
                name: {"count": int(count), "examples": examples.get((name, lang, dataset), [])}
                for name, count in zip(AUDITS, counts[(lang, dataset)])
            }
            for dataset in registry.DATASETS
            if (lang, dataset) in counts
        }
        for lang in registry.LANGS
        if any(key[0] == lang for key in counts)
    }
