"""Reading predictions: malformed lines are errors naming the line; garbage predictions never are."""

from __future__ import annotations

import json

import pytest

from configs import make
from mmm.evaluation import evaluate_file, predictions
from mmm.io import InputError

GOOD = {
    "id": "a",
    "lang": "en",
    "dataset": "SCNM",
    "input": "Kazan went home./NER",
    "output": "Literature/NER/:Person;Kazan",
    "prediction": "Literature/NER/:Person;Kazan",
}


def write(tmp_path, lines: list[str | dict]) -> str:
    path = tmp_path / "predictions.jsonl"
    text = "".join((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n" for line in lines)
    path.write_text(text, encoding="utf-8")
    return str(path)


def problems(path: str) -> list[str]:
    with pytest.raises(InputError) as caught:
        predictions.read(path)
    return [str(p) for p in caught.value.problems]


def test_good_file_reads_with_words_and_extra_fields_kept_out(tmp_path):
    path = write(tmp_path, [{**GOOD, "finish": "eos", "reasons": [1, 2]}, {**GOOD, "id": "b", "dataset": "TCONER"}])
    frame = predictions.read(path)
    assert frame["word"].to_list() == ["NER", "NER"] and frame["row"].to_list() == [0, 1]
    assert frame["target"].to_list() == [None, None]


def test_invalid_json_and_missing_fields_name_their_lines(tmp_path):
    # A blank line before: line numbers are the file's, not the row index.
    missing = {k: v for k, v in GOOD.items() if k != "prediction"}
    path = write(tmp_path, [GOOD, "", '{"id": "b", "lang": ', missing, {**GOOD, "id": "d", "prediction": None}, "[1, 2]"])
    found = problems(path)
    assert found[0].startswith(f"{path}:3: invalid JSON")
    assert found[1] == f"{path}:4: missing field 'prediction'"
    assert found[2] == f"{path}:5: missing field 'prediction'"
    assert found[3] == f"{path}:6: expected a JSON object, got list"


def test_gold_side_problems_are_all_listed_with_lines(tmp_path):
    path = write(
        tmp_path,
        [
            GOOD,
            {**GOOD, "id": "b", "dataset": "SCNX"},
            {**GOOD, "id": "c", "lang": "fr"},
            {**GOOD, "id": "d", "input": "Kazan went home./Sentiment N"},
            {**GOOD, "id": "e", "output": "Literature/Sentiment N/:Person;Kazan"},
            {**GOOD, "id": "f", "output": "  /NER/:Person;Kazan"},
            "",
            {**GOOD, "prediction": "anything"},
        ],
    )
    found = problems(path)
    assert found == [
        f"{path}:2: unknown dataset 'SCNX'; expected one of SCNM, SCPOS-RW, SCPOS-AdjN, SCPOS-Adj, SCPOS-N, TCREE, TCONER",
        f"{path}:3: unknown lang 'fr'; expected one of en, ja, zh",
        f"{path}:4: input does not end with the instruction '/NER' of SCNM",
        f"{path}:5: gold output lacks the instruction marker '/NER/'",
        f"{path}:6: gold output has an empty text label",
        f"{path}:8: duplicate id 'a' in en/SCNM (first at line 1)",
    ]


def test_tcree_accepts_both_of_its_instruction_words(tmp_path):
    rows = [
        {"id": "r", "lang": "ja", "dataset": "TCREE", "input": "文/Relation Extraction", "output": "政治/Relation Extraction/:a;所属;b", "prediction": ""},
        {"id": "e", "lang": "ja", "dataset": "TCREE", "input": "文/Event Extraction", "output": "経済/Event Extraction/:a;買収;b", "prediction": "x"},
    ]
    assert predictions.read(write(tmp_path, rows))["word"].to_list() == ["Relation Extraction", "Event Extraction"]


def test_garbage_predictions_are_never_errors(tmp_path):
    garbage = ["", " ", "/NER/", "::;;//", "\u0000\ufffd", "Literature/NER/" + ":x" * 500, '{"json": true}', "5"]
    path = write(tmp_path, [{**GOOD, "id": str(i), "prediction": g} for i, g in enumerate(garbage)])
    result = evaluate_file(path, make("evaluate", bootstrap_samples=0))
    assert result["metrics"]["en"]["SCNM"]["n"] == len(garbage)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such predictions file"):
        predictions.read(tmp_path / "nope.jsonl")
    assert problems(write(tmp_path, [""])) == [f"{tmp_path / 'predictions.jsonl'}: no predictions in file"]


def test_declared_targets(tmp_path):
    path = write(tmp_path, [{**GOOD, "target": "text_only"}, {**GOOD, "id": "b", "target": "text_only"}])
    assert predictions.declared_targets(predictions.read(path)) == ["text_only"]
    assert problems(write(tmp_path, [{**GOOD, "target": 3}, {**GOOD, "id": "b", "prediction": None}])) == [
        f"{tmp_path / 'predictions.jsonl'}:1: field 'target' must be a string, got int",
        f"{tmp_path / 'predictions.jsonl'}:2: missing field 'prediction'",
    ]


def test_inputs_without_a_final_instruction_word(tmp_path):
    rows = [{**GOOD, "input": "no slash at all"}, {**GOOD, "id": "b", "input": "ends in /a segment longer than any instruction word"}]
    path = write(tmp_path, rows)
    assert problems(path) == [f"{path}:{n}: input does not end with the instruction '/NER' of SCNM" for n in (1, 2)]
