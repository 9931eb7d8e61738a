"""The vectorised evaluator agrees with the readable references on arbitrary strings.

* per-row counts of ``scoring`` == ``algorithm1.score_sample`` (paper and normalized mode);
* ``scoring.normalized`` == ``algorithm1.normalize``;
* the audit grammar and field extraction == the strict parser ``records.parse_word_part``.
"""

from __future__ import annotations

import re

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmm.evaluation import audits, scoring
from mmm.evaluation.algorithm1 import LEVELS, normalize, parse_paper, score_sample
from mmm.records import FormatError, parse_word_part
from mmm.registry import kind

# Characters that exercise every rule: delimiters (ASCII and full-width), markers, whitespace.
ALPHABET = [":", ";", "/", "：", "；", " ", "\u3000", "\t", "a", "b", "人", "N", "E", "R"]
TEXT = st.text(alphabet=ALPHABET, max_size=16)
PIECE = st.text(alphabet=["a", "b", " ", "人", "/", ":"], min_size=0, max_size=5)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def prediction(draw, word: str) -> str:
    """Mostly marker-bearing strings with pair-like parts, sometimes pure noise."""
    if draw(st.booleans()):
        return draw(TEXT)
    label = draw(TEXT)
    pieces = draw(st.lists(st.tuples(PIECE, PIECE, PIECE), max_size=4))
    sep = draw(st.sampled_from([":", "：", " : ", ""]))
    part = "".join(sep + ";".join(p if draw(st.booleans()) else p[:2]) for p in pieces)
    return f"{label}/{word}/{part}{draw(TEXT)}"


@st.composite
def rows(draw) -> list[tuple[str, str, str, str]]:
    """``(dataset, word, gold, prediction)`` rows; the gold has a marker and a non-blank label."""
    out = []
    for _ in range(draw(st.integers(1, 6))):
        dataset, word = draw(st.sampled_from([("SCNM", "NER"), ("TCREE", "Relation Extraction"), ("SCPOS-N", "Sentiment N")]))
        gold = draw(prediction(word).filter(lambda s, w=word: f"/{w}/" in s and s.split(f"/{w}/", 1)[0].strip() != ""))
        out.append((dataset, word, gold, draw(prediction(word))))
    return out


def _frame(sample: list[tuple[str, str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "row": list(range(len(sample))),
            "lang": ["en"] * len(sample),
            "dataset": [r[0] for r in sample],
            "word": [r[1] for r in sample],
            "output": [r[2] for r in sample],
            "prediction": [r[3] for r in sample],
        },
        schema_overrides={"row": pl.Int64},
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=rows(), mode=st.sampled_from(["paper", "normalized"]))
def test_vectorised_counts_equal_the_reference(sample, mode):
    counts = scoring.row_counts(_frame(sample), mode)
    for (dataset, word, gold, pred), got in zip(sample, counts.iter_rows(named=True)):
        whole = kind(dataset).word_level == "triple"
        if mode == "normalized":
            gold, pred = normalize(gold), normalize(pred)
        expected = score_sample(parse_paper(gold, word, whole), parse_paper(pred, word, whole))
        for level in LEVELS:
            assert (got[f"{level}_tp"], got[f"{level}_gen"], got[f"{level}_real"]) == (
                expected[level].tp,
                expected[level].generated,
                expected[level].real,
            ), (level, gold, pred)


@SETTINGS
@given(texts=st.lists(st.text(alphabet=ALPHABET + ["\n", "\xa0", "\u2009"], max_size=20), min_size=1, max_size=8))
def test_vectorised_normalize_equals_the_reference(texts):
    got = pl.DataFrame({"t": texts}).select(scoring.normalized(pl.col("t")))["t"].to_list()
    assert got == [normalize(t) for t in texts]


@SETTINGS
@given(text=st.text(alphabet=ALPHABET + ["\n", "\xa0", "x"], max_size=12))
def test_rows_the_prefilter_skips_are_unchanged_by_normalize(text):
    if not re.search(scoring.NEEDS_NORMALIZING, text):
        assert normalize(text) == text


def _strict(part: str, dataset: str) -> tuple[tuple[str, ...], ...] | None:
    try:
        return parse_word_part(part, dataset)
    except FormatError:
        return None


WORD_PART = st.text(alphabet=[":", ";", "/", "a", "b", " "], max_size=14)


@SETTINGS
@given(parts=st.lists(WORD_PART, min_size=1, max_size=10), dataset=st.sampled_from(["SCNM", "TCREE"]))
def test_audit_grammar_and_fields_equal_the_strict_parser(parts, dataset):
    whole = kind(dataset).word_level == "triple"
    grammar = audits.TRIPLE_GRAMMAR if whole else audits.PAIR_GRAMMAR
    labels, entities = audits._word_fields(pl.col("p"), whole)
    fields = pl.DataFrame({"p": parts}).select(labels.alias("labels"), entities.alias("entities"))
    for part, got_labels, got_entities in zip(parts, fields["labels"].to_list(), fields["entities"].to_list()):
        strict = _strict(part, dataset)
        assert (re.search(grammar, part) is not None) == (strict is not None), part
        if strict:  # well-formed: the extracted labels and entities are the strict parser's
            k = kind(dataset)
            assert got_labels == [piece[k.label_field] for piece in strict], part
            assert got_entities == [piece[i] for piece in strict for i in k.entity_fields()], part


def test_grammar_examples():
    assert re.search(audits.PAIR_GRAMMAR, ":Event;10:30 meeting:Person;Ann")  # ':' inside an entity
    assert not re.search(audits.PAIR_GRAMMAR, ":Per/son;Ann")  # '/' in a label
    assert not re.search(audits.PAIR_GRAMMAR, "Person;Ann")  # no leading ':'
    assert re.search(audits.TRIPLE_GRAMMAR, ":A:1;member of;B")
    assert not re.search(audits.TRIPLE_GRAMMAR, ":A;member of;B:C;award;D")
