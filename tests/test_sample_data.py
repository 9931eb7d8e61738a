"""The embedded sample: loads through the real loader, and every row is right."""

from __future__ import annotations

import json

import pytest

from mmm import registry
from mmm.raw import load_references, load_sample
from mmm.records import Sample
from mmm.scripts import HAN_RE, KANA_RE

SIX = [d for d in registry.DATASETS if d != "TCONER"]


@pytest.fixture(scope="module")
def sources(sample_dir):
    return [Sample.from_record(r) for r in load_sample(sample_dir)]


@pytest.fixture(scope="module")
def references(sample_dir):
    return {lang: [Sample.from_record(r) for r in load_references(sample_dir, lang)] for lang in ("en", "zh")}


def test_each_japanese_subdataset_has_at_least_40_rows(sources):
    for dataset in SIX:
        rows = [s for s in sources if s.dataset == dataset]
        assert len(rows) >= 40, dataset
        assert all(s.lang == "ja" for s in rows)
        assert len({s.text for s in rows}) == len(rows), f"{dataset}: repeated text"


def test_every_row_is_consistent(sources, references):
    for sample in [*sources, *references["en"], *references["zh"]]:
        kind = registry.kind(sample.dataset)
        where = f"{sample.lang}/{sample.id}"
        assert sample.text_label in kind.text_labels[sample.lang], where
        for label in sample.word_labels():
            assert label in kind.word_labels[sample.lang], f"{where}: {label}"
        for entity in sample.entities():
            assert entity in sample.text, f"{where}: {entity!r} not in text"
        if kind.word_level == "triple":
            assert len(sample.pairs) == 1, where


def test_references_align_with_sources_through_the_label_tables(sources, references):
    by_id = {s.id: s for s in sources}
    for lang, refs in references.items():
        assert {r.id for r in refs} == set(by_id), lang
        for ref in refs:
            src = by_id[ref.id]
            kind = registry.kind(src.dataset)
            assert (ref.dataset, ref.instruct, len(ref.pairs)) == (src.dataset, src.instruct, len(src.pairs))
            mapped = kind.text_labels[lang][kind.text_labels["ja"].index(src.text_label)]
            assert ref.text_label == mapped, ref.id
            ja_words = [kind.word_labels["ja"].index(w) for w in src.word_labels()]
            assert [kind.word_labels[lang].index(w) for w in ref.word_labels()] == ja_words, ref.id


def test_reference_scripts(references):
    for ref in references["en"]:
        assert not KANA_RE.search(ref.input + ref.output) and not HAN_RE.search(ref.input + ref.output), ref.id
    for ref in references["zh"]:
        assert not KANA_RE.search(ref.input + ref.output), ref.id


def test_tconer_source_is_in_pile_ner_format(sample_dir):
    records = json.loads((sample_dir / "pile-ner" / "tconer.json").read_text(encoding="utf-8"))
    assert len(records) >= 60
    for rec in records:
        turns = rec["conversations"]
        assert turns[0]["from"] == "human" and turns[0]["value"].startswith("Text: ")
        questions = [t["value"] for t in turns[2::2]]
        assert len(questions) >= 2
        assert all(q.startswith("What describes ") and q.endswith(" in the text?") for q in questions)
