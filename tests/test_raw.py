"""Raw-data loading: published layouts, the hub path on local files, and error reports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mmm.io import InputError, read_records
from mmm.raw import infer_dataset, load_hub, load_published_file

ROWS = [
    {"input": "Giant pandas live in Sichuan./NER", "output": "Nature/NER/:Location;Sichuan"},
    {"input": "这家店的蛋糕很好吃。/Sentiment Adj", "output": "积极/Sentiment Adj/:积极;好吃"},
    {"input": "佐藤選手が金賞を受けた。/Event Extraction", "output": "スポーツ/Event Extraction/:佐藤選手;受賞;金賞"},
    {"input": "The band toured Peru in May./NER", "output": "music/NER/:country;Peru:date;May"},
]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_published_jsonl_infers_lang_dataset_and_stable_ids(tmp_path):
    records = load_published_file(write_jsonl(tmp_path / "train.jsonl", ROWS))
    assert [(r["lang"], r["dataset"]) for r in records] == [
        ("en", "SCNM"),
        ("zh", "SCPOS-Adj"),
        ("ja", "TCREE"),
        ("en", "TCONER"),
    ]
    assert [r["id"] for r in records] == [f"train-{i:06d}" for i in range(1, 5)]
    assert load_published_file(tmp_path / "train.jsonl") == records


def test_published_json_array_and_csv_give_the_same_records(tmp_path):
    json_path = tmp_path / "train.json"
    json_path.write_text(json.dumps(ROWS, ensure_ascii=False), encoding="utf-8")
    csv_path = tmp_path / "train.csv"
    with open(csv_path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["input", "output"])
        writer.writeheader()
        writer.writerows(ROWS)
    from_json = load_published_file(json_path)
    from_csv = load_published_file(csv_path)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "id"} for r in rs]  # noqa: E731
    assert strip(from_json) == strip(from_csv)
    # CSV ids follow file lines (header is line 1), JSON ids follow array positions
    assert from_csv[0]["id"] == "train-000002" and from_json[0]["id"] == "train-000001"


def test_explicit_columns_win_over_inference(tmp_path):
    rows = [{"id": "a1", "lang": "en", "dataset": "TCONER", "input": "Paris./NER", "output": "Nature/NER/:city;Paris"}]
    assert load_published_file(write_jsonl(tmp_path / "x.jsonl", rows))[0]["dataset"] == "TCONER"


def test_every_bad_row_is_reported_with_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(ROWS[0]),
                "{not json",
                json.dumps({"input": "no output/NER"}),
                json.dumps({"input": "text without instruction", "output": "x"}),
                json.dumps({"input": "a text./NER", "output": "Society NER :Person;a"}),
                json.dumps({"id": "z", "lang": "en", "dataset": "NOPE", "input": "a/NER", "output": "S/NER/"}),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as info:
        load_published_file(path)
    problems = info.value.problems
    assert [p.line for p in problems] == [2, 3, 4, 5, 6]
    text = str(info.value)
    assert f"{path}:2: invalid JSON" in text
    assert "missing field(s): output" in text
    assert "known instruction word" in text
    assert "marker" in text
    assert "unknown dataset 'NOPE'" in text


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_published_files_keep_the_reader_contract(tmp_path, suffix):
    path = tmp_path / f"train{suffix}"
    body = {".jsonl": '{"input": "a/NER", "output": "S/NER/"}\n{"input": "b\xff', ".json": '[\n {"input": "b\xff',
            ".csv": 'input,output\n"b\xff'}[suffix].encode("latin-1")
    path.write_bytes(body)
    with pytest.raises(InputError, match=rf"{path.name}:2: invalid UTF-8 \(byte 0xff at column \d+\)$"):
        load_published_file(path)
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(ROWS).encode())
    with pytest.raises(InputError, match=rf"{path.name}:1: starts with a UTF-8 byte order mark"):
        load_published_file(path)


def test_record_reader_lists_duplicate_fields_and_bad_json(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('[1]\n{"id": "a"}\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_records(path)
    assert [p.line for p in info.value.problems] == [1, 2]
    assert "expected a JSON object" in str(info.value)


def test_hub_path_loads_a_local_folder_offline(tmp_path, monkeypatch):
    """The same `datasets.load_dataset` call as for a hub id, on a folder in the published layout."""
    folder = tmp_path / "MMM-dataset-Trainset"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", ROWS)
    records = load_hub(str(folder), "train", allow_network=False)
    assert [r["dataset"] for r in records] == ["SCNM", "SCPOS-Adj", "TCREE", "TCONER"]
    assert records[0]["id"] == "MMM-dataset-Trainset-train-000001"


def test_hub_id_fails_cleanly_when_offline():
    import os

    with pytest.raises(Exception) as info:
        load_hub("ganchengguang/MMM-dataset-Trainset", "train", allow_network=False)
    assert os.environ["HF_DATASETS_OFFLINE"] == "1" and os.environ["HF_HUB_OFFLINE"] == "1"
    assert "offline" in str(info.value).lower() or "couldn't" in str(info.value).lower()


def test_infer_dataset_by_instruction_word():
    assert infer_dataset("x/Sentiment Adj and N", "positive/Sentiment Adj and N/") == "SCPOS-AdjN"
    assert infer_dataset("x/Sentiment Relation Word", "positive/Sentiment Relation Word/") == "SCPOS-RW"
    assert infer_dataset("東京の話。/NER", "社会/NER/") == "SCNM"
