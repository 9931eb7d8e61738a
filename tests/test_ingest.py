"""Ingest from several datasets: pinned hub ids or local copies, merged with unique ids, layout named when wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from configs import make, write_params
from mmm import config, ingest
from mmm.errors import ParamsError
from mmm.io import InputError

TRAIN_ROWS = [
    {"id": "tr-1", "input": "Giant pandas live in Sichuan./NER", "output": "Nature/NER/:Location;Sichuan"},
    {"id": "tr-2", "input": "The band toured Peru in May./NER", "output": "music/NER/:country;Peru:date;May"},
]
TEST_ROWS = [{"id": "te-1", "input": "Tokyo Station is busy./NER", "output": "Society/NER/:Facility;Tokyo Station"}]


def _folder(root: Path, name: str, rows: list[dict], split: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def _cfg(tmp_path: Path, hub: list[dict]) -> config.IngestConfig:
    return make("ingest", raw_dir=str(tmp_path), source="hub", hub=hub, langs=["en"],
                sources=str(tmp_path / "out" / "sources.jsonl"), references=str(tmp_path / "out" / "refs.jsonl"),
                metrics=str(tmp_path / "out" / "ingest.json"))


def test_train_and_test_copies_are_merged_and_counted_per_input(tmp_path):
    train = _folder(tmp_path, "Trainset", TRAIN_ROWS, "train")
    test = _folder(tmp_path, "Testset", TEST_ROWS, "test")
    cfg = _cfg(tmp_path, [{"path": str(train), "split": "train"}, {"path": str(test), "split": "test"}])
    metrics = ingest.run(cfg, allow_network=False)
    written = [json.loads(line)["id"] for line in open(cfg.sources, encoding="utf-8")]
    assert written == ["tr-1", "tr-2", "te-1"]
    assert list(metrics["inputs"].values()) == [2, 1]
    assert metrics["sources"]["en"]["total"] == 3


def test_an_id_in_two_inputs_is_refused_naming_both_and_nothing_is_written(tmp_path):
    train = _folder(tmp_path, "Trainset", TRAIN_ROWS, "train")
    test = _folder(tmp_path, "Testset", [{**TEST_ROWS[0], "id": "tr-2"}], "test")
    cfg = _cfg(tmp_path, [{"path": str(train), "split": "train"}, {"path": str(test), "split": "test"}])
    with pytest.raises(InputError) as caught:
        ingest.run(cfg, allow_network=False)
    [line] = caught.value.lines()
    assert "Testset[test]:1: id 'tr-2' also comes from" in line and "Trainset[train] (row 2)" in line
    assert not Path(cfg.sources).exists()


def test_data_files_read_only_the_chosen_files_as_the_entry_split(tmp_path):
    """The published repositories hold each language in its own files (Train_Ja_*, Train_En_*, test_Ja_*):
    ``data_files`` picks the Japanese originals, and a test repository's files become its ``test`` split."""
    train = tmp_path / "Trainset"
    train.mkdir()
    for name, rows in (("Train_En_0_SCNM.json", TRAIN_ROWS[:1]), ("Train_Xx_0_SCNM.json", TRAIN_ROWS[1:])):
        (train / name).write_text(json.dumps(rows), encoding="utf-8")
    test = tmp_path / "Testset"
    test.mkdir()
    (test / "test_En_5_TCREE.json").write_text(json.dumps(TEST_ROWS), encoding="utf-8")
    (test / "test_Xx_5_TCREE.json").write_text(json.dumps([{**TEST_ROWS[0], "id": "other"}]), encoding="utf-8")
    cfg = _cfg(tmp_path, [{"path": str(train), "split": "train", "data_files": "Train_En_*.json"},
                          {"path": str(test), "split": "test", "data_files": ["test_En_*.json"]}])
    metrics = ingest.run(cfg, allow_network=False)
    written = [json.loads(line)["id"] for line in open(cfg.sources, encoding="utf-8")]
    assert written == ["tr-1", "te-1"]
    assert list(metrics["inputs"]) == ["Trainset:Train_En_*.json[train]", "Testset:test_En_*.json[test]"]
    assert list(metrics["inputs"].values()) == [1, 1]


def test_an_empty_data_files_choice_is_refused(tmp_path):
    with pytest.raises(ParamsError, match="data_files: give a non-empty glob"):
        _cfg(tmp_path, [{"path": str(tmp_path / "copy"), "split": "train", "data_files": []}])


def test_a_copy_without_the_published_columns_names_what_is_missing(tmp_path):
    folder = _folder(tmp_path, "Other", [{"text": "Tokyo", "label": "LOC"}], "train")
    cfg = _cfg(tmp_path, [{"path": str(folder), "split": "train"}])
    with pytest.raises(InputError) as caught:
        ingest.run(cfg, allow_network=False)
    [line] = caught.value.lines()
    assert "no 'input' or 'output' column (it has: text, label)" in line and "published MMM layout" in line


@pytest.mark.parametrize("entry, message", [
    ({"id": "owner/name", "split": "train"}, "revision is required"),
    ({"id": "owner/name", "revision": None, "split": "train"}, "revision is required"),
    ({"id": "owner/name", "path": "x", "revision": "abc", "split": "train"}, "exactly one of id"),
    ({"split": "train"}, "exactly one of id"),
    ({"path": "copy", "revision": "abc", "split": "train"}, "has no revision"),
    ({"id": "owner/name", "revision": "abc"}, "split"),
])
def test_every_hub_entry_is_pinned_and_names_one_place(tmp_path, entry, message):
    with pytest.raises(ParamsError, match=message):
        _cfg(tmp_path, [entry])


def test_a_local_copy_outside_raw_dir_is_refused(tmp_path):
    params = write_params(tmp_path / "params.yaml", ingest={"hub": [{"path": str(tmp_path / "elsewhere"), "split": "train"}]})
    with pytest.raises(ParamsError, match=r"ingest.hub.0.path: .* is not inside ingest.raw_dir"):
        config.load(params)


def test_the_tconer_hub_id_is_pinned_too():
    with pytest.raises(ParamsError, match="hub_revision: required with hub_id Universal-NER/Pile-NER-type"):
        make("tconer", hub_id="Universal-NER/Pile-NER-type", hub_revision=None)
    assert make("tconer", hub_id="Universal-NER/Pile-NER-type", hub_revision="abc123").hub_revision == "abc123"
