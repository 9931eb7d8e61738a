"""TCONER conversion from Pile-NER-type conversations."""

from __future__ import annotations

import json

import pytest
from conftest import SHARED_DATA

from mmm.io import InputError
from mmm.tconer.convert import convert, load_conversations, load_located


def conv(rid: str, text: str, *qa: tuple[str, str]) -> dict:
    turns = [{"from": "human", "value": f"Text: {text}"}, {"from": "gpt", "value": "I've read this text."}]
    for etype, answer in qa:
        turns += [{"from": "human", "value": f"What describes {etype} in the text?"}, {"from": "gpt", "value": answer}]
    return {"id": rid, "conversations": turns}


def test_groups_by_text_and_accounts_for_every_answer():
    records = [
        conv("a0", "Ada met Babbage in London .", ("person", '["Ada", "Babbage"]')),
        conv("a1", "Ada met Babbage in London .", ("location", '["London"]'), ("date", "[]")),
        conv("a2", "Ada met Babbage in London .", ("person", '["Ada"]')),  # duplicate pair collapses
        conv("b0", "Paris at 10:30 ; see http://x.org/a", ("city", '["Paris"]'), ("time", '["10:30"]')),
        conv("c0", "Rome .", ("city", "Rome"), ("country", '["Italy"]'), ("x/y", '["Rome"]')),
        {"id": "d0", "conversations": [{"from": "gpt", "value": "hello"}]},
    ]
    converted, report = convert(records)
    assert [c.id for c in converted] == ["a0", "b0", "c0"]
    assert converted[0].pairs == [("person", "Ada"), ("person", "Babbage"), ("location", "London")]
    assert converted[0].source_ids == ["a0", "a1", "a2"]
    assert converted[0].text == "Ada met Babbage in London ."  # tokenised text kept as it is
    assert converted[1].pairs == [("city", "Paris"), ("time", "10:30")]
    assert converted[2].pairs == []
    metrics = report.to_metrics()
    assert metrics["records"] == 6 and metrics["records_without_text"] == 1 and metrics["texts"] == 3
    assert metrics["questions"] == 9 and metrics["negative_answers"] == 1
    assert metrics["problems"] == {
        "answer_not_json": 1,
        "duplicate_pair": 1,
        "entity_not_in_text": 1,
        "no_text_turn": 1,
        "unrepresentable_type": 1,
    }
    assert metrics["examples"]["entity_not_in_text"] == ["c0"]
    # entities counted: Ada, Babbage, London, Ada, Paris, 10:30, Italy
    assert metrics["entities"] == 7 and metrics["pairs_kept"] == 5


def test_sample_source_noise_is_reported(sample_dir):
    records = load_conversations(sample_dir / "pile-ner" / "tconer.json")
    converted, report = convert(records)
    metrics = report.to_metrics()
    assert len(converted) == len(records) == 64
    assert metrics["problems"]["entity_not_in_text"] == 3
    assert metrics["problems"]["duplicate_pair"] == 2
    assert metrics["problems"].get("answer_not_json", 0) + metrics["problems"].get("answer_not_a_list", 0) == 2
    for item in converted:
        assert all(entity in item.text for _, entity in item.pairs)


REAL_FILES = sorted(SHARED_DATA.glob("pile-ner-format/*.json")) if SHARED_DATA.exists() else []


@pytest.mark.skipif(not REAL_FILES, reason="../shared/data/pile-ner-format is absent")
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.stem)
def test_real_pile_ner_files_convert_completely(path):
    records = load_conversations(path)
    converted, report = convert(records)
    metrics = report.to_metrics()
    assert metrics["records"] == len(records)
    distinct = {r["conversations"][0]["value"] for r in records}
    assert metrics["texts"] == len(converted) == len(distinct)
    assert sum(len(c.source_ids) for c in converted) + metrics["records_without_text"] == len(records)
    assert metrics["questions"] == sum((len(r["conversations"]) - 2) // 2 for r in records)
    assert 0.5 < metrics["entity_in_text_rate"] <= 1.0
    assert all(entity in c.text for c in converted for _, entity in c.pairs)
    print(path.stem, json.dumps({k: metrics[k] for k in ("texts", "entities", "pairs_kept", "entity_in_text_rate")}))


def test_one_id_with_two_texts_is_an_error_naming_both_lines(tmp_path):
    records = [conv("a", "Ada met Babbage ."), conv("b", "Rome ."), conv("a", "Ada met Babbage ."), conv("a", "Paris .")]
    path = tmp_path / "src.json"
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")  # a published-style array over many lines
    located = load_located(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [r for _, r in located] == records
    assert all(lines[n - 1].strip() == "{" for n, _ in located)  # each item's line is where it opens
    origins = [(str(path), n) for n, _ in located]
    with pytest.raises(InputError) as caught:
        convert(records, origins=origins)
    first, last = located[0][0], located[3][0]
    assert [str(p) for p in caught.value.problems] == [f"{path}:{last}: id 'a' names a different text than at {path}:{first}"]
    converted, report = convert(records[:3], origins=origins[:3])  # the same id repeating its text is grouped, as before
    assert [c.id for c in converted] == ["a", "b"] and converted[0].source_ids == ["a", "a"] and report.records == 3


def test_json_array_errors_name_their_line(tmp_path):
    path = tmp_path / "src.json"
    path.write_text('[\n {"id": "a"},\n {"id": "b"}\n {"id": "c"}\n]\n', encoding="utf-8")
    with pytest.raises(InputError, match=rf"{path}:4: invalid JSON \(Expecting ',' delimiter\)"):
        load_located(path)
    path.write_text('{"id": "a"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="expected a JSON array"):
        load_located(path)
    path.write_text("[]\n", encoding="utf-8")
    assert load_located(path) == []
