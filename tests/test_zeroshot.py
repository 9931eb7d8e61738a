"""The zero-shot NER reader (Pile-NER-type files grouped by text), subsampling and scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmm import zeroshot
from mmm.io import InputError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "pile-ner-format"


def conversation(rid: str, text: str, kind: str, answer: str) -> dict:
    return {"id": rid, "conversations": [
        {"from": "human", "value": f"Text: {text}"}, {"from": "gpt", "value": "I've read this text."},
        {"from": "human", "value": f"What describes {kind} in the text?"}, {"from": "gpt", "value": answer}]}


SYNTHETIC = [  # own texts, one record per (text, type) question like the real files
    conversation("s0", "Mira Ostrava toured Lisbon .", "person", '["Mira Ostrava"]'),
    conversation("s1", "Mira Ostrava toured Lisbon .", "city", '["Lisbon"]'),
    conversation("s2", "Mira Ostrava toured Lisbon .", "gadget", "[]"),
    conversation("s3", "The Zorblatt 3000 hums .", "gadget", '["Zorblatt 3000", "Zorblatt"]'),
    conversation("s4", "The Zorblatt 3000 hums .", "city", "[]"),
    conversation("s5", "Mira Ostrava toured Lisbon .", "city", '["Lisbon", "Porto"]'),  # the text again
]


def write(path: Path, records: list) -> Path:
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return path


def test_records_are_grouped_by_text_with_every_asked_type(tmp_path):
    gold = zeroshot.read_pile_ner(write(tmp_path / "own.json", SYNTHETIC))
    assert (gold.name, gold.records, gold.types) == ("own", 6, ("person", "city", "gadget"))
    first, second = gold.items
    assert (first.id, first.source_ids) == ("s0", ["s0", "s1", "s2", "s5"])
    # Porto is not in the text: kept (a miss the model cannot avoid), Lisbon not doubled
    assert first.entities == {"person": ["Mira Ostrava"], "city": ["Lisbon", "Porto"], "gadget": []}
    assert second.pairs() == {("gadget", "Zorblatt 3000"), ("gadget", "Zorblatt")} and second.entities["city"] == []


def test_an_unreadable_record_names_its_file_and_line(tmp_path):
    bad = SYNTHETIC[:2] + [conversation("s9", "Rain .", "weather", "not json")]
    with pytest.raises(InputError) as err:
        zeroshot.read_pile_ner(write(tmp_path / "bad.json", bad))
    assert len(err.value.problems) == 1
    problem = err.value.problems[0]
    assert problem.path.endswith("bad.json") and problem.line > 1 and "answer" in problem.message
    with pytest.raises(InputError, match="Text: "):
        zeroshot.read_pile_ner(write(tmp_path / "notext.json", [{"conversations": [{"value": "x"}] * 4}]))


def test_scores_are_micro_over_type_entity_sets_after_normalisation():
    gold = [zeroshot.Gold("a", "t", {"person": ["Mira  Ostrava"], "city": ["Lisbon"]}),
            zeroshot.Gold("b", "t", {"gadget": ["the Zorblatt-3000"]})]
    predicted = [[("Person", "Mira Ostrava"), ("city", "lisbon"), ("city", "Oslo")], None]
    exact = zeroshot.score(gold, predicted).metrics()
    assert (exact["correct"], exact["predicted"], exact["gold"]) == (1, 3, 3)  # case of the entity matters
    assert exact["precision"] == exact["recall"] == exact["f1"] == 33.33
    loose = zeroshot.score(gold, [[("city", "LISBON"), ("gadget", "Zorblatt3000")], [("gadget", "Zorblatt-3000")]],
                           zeroshot.uniner).metrics()
    assert (loose["correct"], loose["predicted"], loose["gold"]) == (2, 3, 3)
    assert zeroshot.uniner(" The Zorblatt-3000, an  Oslo's ") == "zorblatt3000 oslos"
    assert zeroshot.Counts().metrics()["f1"] == 0.0
    with pytest.raises(ValueError):
        zeroshot.score(gold, predicted[:1])


def test_scnm_labels_are_scored_on_the_types_both_sides_can_name():
    gold = [zeroshot.Gold("a", "t", {"researcher": ["Mira Ostrava"], "university": ["Ridgeway University"],
                                     "algorithm": ["gradient descent"], "country": ["Portugal"]})]
    predicted = [[("Person", "Mira Ostrava"), ("Other Organization", "Ridgeway University"),
                  ("Product Name", "gradient descent"), ("Company", "Portugal"), ("Location", "Lisbon")]]
    mine, scored = zeroshot.as_scnm(gold[0], predicted[0])
    assert scored == {("person", "Mira Ostrava"), ("organization", "Ridgeway University"), ("location", "Portugal")}
    assert ("product", "gradient descent") not in mine  # an algorithm: SCNM cannot name it, so it is not scored
    counts = zeroshot.score_as_scnm(gold, predicted).metrics()
    assert (counts["correct"], counts["predicted"], counts["gold"]) == (2, 4, 3)  # Portugal typed wrong, Lisbon extra
    assert zeroshot.score_as_scnm(gold, [None]).metrics()["predicted"] == 0


def test_subsample_is_seeded_and_ignores_file_order():
    items = [zeroshot.Gold(f"id{i}", f"text {i}") for i in range(50)]
    picked = zeroshot.subsample(items, 10, seed=3)
    assert len(picked) == 10 and [items.index(g) for g in picked] == sorted(items.index(g) for g in picked)
    assert {g.id for g in zeroshot.subsample(items[::-1], 10, seed=3)} == {g.id for g in picked}
    assert {g.id for g in zeroshot.subsample(items, 10, seed=4)} != {g.id for g in picked}
    assert zeroshot.subsample(items, None, 0) == items


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared Pile-NER-format data is not on this machine")
@pytest.mark.parametrize("name", ["CrossNER_AI", "CrossNER_music", "mit-restaurant"])
def test_the_shared_files_group_into_texts_with_their_label_sets(name):
    path = SHARED / f"{name}.json"
    gold = zeroshot.read_pile_ner(path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert gold.records == len(raw)
    asked = {r["conversations"][2]["value"].removeprefix("What describes ").removesuffix(" in the text?") for r in raw}
    assert set(gold.types) == asked
    by_text = {g.text: g for g in gold.items}
    assert len(by_text) == len(gold.items) == len({r["conversations"][0]["value"] for r in raw})
    assert all(set(g.entities) == set(gold.types) for g in gold.items)  # every text is asked every type
    for record in raw[:40]:  # a few records: their answers are in their text's group
        text = record["conversations"][0]["value"].removeprefix("Text: ")
        kind = record["conversations"][2]["value"].removeprefix("What describes ").removesuffix(" in the text?")
        assert set(json.loads(record["conversations"][3]["value"])) <= set(by_text[text].entities[kind])
        assert record["id"] in by_text[text].source_ids
