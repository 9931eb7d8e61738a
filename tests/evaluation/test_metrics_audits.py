"""Audits: each failure kind is counted, with the first ids in file order."""

from __future__ import annotations

import json

from configs import make
from mmm.evaluation import evaluate_file

EN_INPUT = "At 10:30 Ann met Bob in Rome./NER"
EN_GOLD = "Society/NER/:Person;Ann:Person;Bob:Location;Rome"
JA_TCREE = ("衆議院議員の山口恵美は、与党の国民協和党に所属し、外交部会長を務めている。/Relation Extraction",
            "政治/Relation Extraction/:山口恵美;所属;国民協和党")


def audit(tmp_path, predictions: list[str], dataset="SCNM", lang="en", inp=EN_INPUT, gold=EN_GOLD, **config) -> dict:
    """Audit counts ``{name: count}`` and examples of one sub-dataset."""
    path = tmp_path / "p.jsonl"
    rows = [{"id": f"p{i}", "lang": lang, "dataset": dataset, "input": inp, "output": gold, "prediction": p}
            for i, p in enumerate(predictions)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = evaluate_file(path, make("evaluate", bootstrap_samples=0, **config))
    return result["audits"][lang][dataset]


def counts(found: dict) -> dict[str, int]:
    return {name: entry["count"] for name, entry in found.items() if entry["count"]}


def test_a_correct_prediction_raises_no_audit(tmp_path):
    assert counts(audit(tmp_path, [EN_GOLD])) == {}


def test_empty_and_missing_marker(tmp_path):
    found = audit(tmp_path, ["", " \u3000", "Society", "Society/Sentiment N/:Person;Ann"])
    assert counts(found) == {"empty_output": 2, "missing_marker": 2}
    assert found["empty_output"]["examples"] == ["p0", "p1"]
    assert found["missing_marker"]["examples"] == ["p2", "p3"]


def test_unparseable_pairs(tmp_path):
    found = audit(tmp_path, ["Society/NER/Person;Ann", "Society/NER/:Person", "Society/NER/:Per/son;Ann", "Society/NER/:;Ann"])
    assert counts(found) == {"unparseable_pairs": 4}


def test_a_colon_inside_an_entity_is_well_formed(tmp_path):
    found = audit(tmp_path, ["Society/NER/:Event;10:30:Person;Ann"], inp=EN_INPUT, gold=EN_GOLD)
    assert counts(found) == {}


def test_labels_outside_the_inventory(tmp_path):
    found = audit(tmp_path, ["Sports/NER/:Person;Ann", "Society/NER/:Animal;Bob:Person;Ann", "society/NER/:person;Ann"])
    assert counts(found) == {"text_label_outside_inventory": 2, "word_label_outside_inventory": 2}
    assert found["text_label_outside_inventory"]["examples"] == ["p0", "p2"]


def test_open_domain_tconer_has_no_inventory(tmp_path):
    found = audit(tmp_path, ["Anything/NER/:Whatever;Ann"], dataset="TCONER")
    assert counts(found) == {}


def test_entities_not_in_the_text(tmp_path):
    found = audit(tmp_path, ["Society/NER/:Person;Carl", "Society/NER/:Location;Rome :Person;Ann", "Society/NER/:Location;Rome"])
    assert counts(found) == {"entity_not_in_text": 2}  # "Rome " with its space is not a span ("Rome.")



def test_tcree_head_label_and_tail(tmp_path):
    inp, gold = JA_TCREE
    found = audit(tmp_path, [gold, "政治/Relation Extraction/:山口恵美;所属;民主党", "政治/Relation Extraction/:山口恵美;友人;国民協和党",
                             "政治/Relation Extraction/:山口恵美;所属", "芸能/Relation Extraction/:山口恵美;所属;国民協和党"],
                  dataset="TCREE", lang="ja", inp=inp, gold=gold)
    assert counts(found) == {"entity_not_in_text": 1, "word_label_outside_inventory": 1, "unparseable_pairs": 1,
                             "text_label_outside_inventory": 1}


def test_duplicates_and_runaway_repetition(tmp_path):
    twice = "Society/NER/:Person;Ann:Person;Ann"
    thrice = "Society/NER/" + ":Person;Ann" * 3
    loop = "Society/NER/:Person;Ann/NER/:Person;Bob"
    found = audit(tmp_path, [twice, thrice, loop])
    assert found["duplicate_pairs"]["examples"] == ["p0", "p1"]
    assert found["runaway_repetition"]["examples"] == ["p1", "p2"]
    assert counts(audit(tmp_path, [thrice], repeat_min=4)).get("runaway_repetition") is None


def test_examples_are_capped_in_file_order(tmp_path):
    found = audit(tmp_path, [""] * 9, max_examples=3)
    assert found["empty_output"] == {"count": 9, "examples": ["p0", "p1", "p2"]}


def test_text_only_and_word_only_audit_only_what_they_predict(tmp_path):
    # A text_only model: its pairs part is not audited; a word_only model: its label is not.
    text_only = audit(tmp_path, ["Sports/NER/:Animal;Carl"], target="text_only")
    assert counts(text_only) == {"text_label_outside_inventory": 1}
    word_only = audit(tmp_path, ["Sports/NER/:Animal;Carl"], target="word_only")
    assert counts(word_only) == {"word_label_outside_inventory": 1, "entity_not_in_text": 1}
