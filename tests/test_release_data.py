"""The dataset release: every configuration loads with `datasets` offline, the card's YAML and numbers come from
the run, the bytes repeat, and stale metrics, unvalidated files and bad rows are refused by name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from release_project import CELLS, expected_counts, seed, write_jsonl
from typer.testing import CliRunner

from mmm import release
from mmm.cli import app
from mmm.errors import DataError
from mmm.io import InputError
from mmm.validation.gate import GateError

runner = CliRunner()
TRAIN_FIRST_JA_SCNM = 3  # train.jsonl holds three rows per cell in CELLS order: en/SCNM, then ja/SCNM


@pytest.fixture
def project(tmp_path, root):
    params = seed(tmp_path, root)
    return tmp_path, params


def front_matter(card: Path) -> dict:
    text = card.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_every_configuration_loads_offline_with_the_split_counts(project, monkeypatch):
    root, params = project
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from datasets import load_dataset

    cfg = params.release_data
    result = release.run(params, cfg)
    counts = expected_counts()
    cells = {f"{lang}-{ds}": [(lang, ds)] for lang, ds in CELLS}
    wanted = {"all": list(CELLS), **{lang: [c for c in CELLS if c[0] == lang] for lang in counts}, **cells}
    names = [c["config_name"] for c in front_matter(cfg.out_dir / "README.md")["configs"]]
    assert sorted(names) == sorted(wanted)
    for name in names:
        loaded = load_dataset(str(cfg.out_dir), name, cache_dir=str(root / "hf-cache"))
        rows = {split: sum(counts[lang][ds][split] for lang, ds in wanted[name]) for split in ("train", "test")}
        assert {split: data.num_rows for split, data in loaded.items()} == {s: n for s, n in rows.items() if n}, name
    assert set(load_dataset(str(cfg.out_dir), "zh-TCREE", cache_dir=str(root / "hf-cache"))) == {"train"}  # no test rows
    first = load_dataset(str(cfg.out_dir), "ja-SCNM", cache_dir=str(root / "hf-cache"))["train"][0]
    source = json.loads(params.split.train.read_text(encoding="utf-8").splitlines()[TRAIN_FIRST_JA_SCNM])
    assert first == source  # the record fields, unchanged
    assert result == {"configs": len(names), "rows": {"train": 21, "test": 13}, "cells": counts}
    assert json.loads(cfg.metrics.read_text(encoding="utf-8")) == result



def test_the_card_yaml_and_numbers_come_from_params_and_metrics(project):
    root, params = project
    translate_en = root / "metrics" / "translate_en.json"
    data = json.loads(translate_en.read_text(encoding="utf-8"))
    data["failures"] = {"llm_empty": 17}
    translate_en.write_text(json.dumps(data), encoding="utf-8")
    cfg = params.release_data.with_flags(license="cc-by-nc-4.0")
    release.run(params, cfg)
    card = cfg.out_dir / "README.md"
    meta = front_matter(card)
    assert meta["license"] == "cc-by-nc-4.0" and meta["language"] == ["en", "ja", "zh"]
    assert meta["task_categories"] == params.release_data.task_categories
    assert meta["size_categories"] == ["n<1K"] and meta["pretty_name"] == params.release_data.pretty_name
    assert meta["configs"][0] == {"config_name": "all", "default": True, "data_files": [
        {"split": "train", "path": "*/train.parquet"}, {"split": "test", "path": "*/test.parquet"}]}
    from huggingface_hub import DatasetCard

    assert DatasetCard.load(card).data.to_dict()["configs"] == meta["configs"]
    text = card.read_text(encoding="utf-8")
    assert "| en | en | MMM sources | ja-en (anchored): 10 of 11, failed: llm_empty 17 | 9 of 10 | residual_japanese 1 | none |" in text
    assert "| zh | zh | MMM sources | ja-zh (anchored): 8 of 11, failed: entity_empty 2, llm_empty 1 | 7 of 8 | " \
           "entity_not_in_text 1 | residual_japanese 3 |" in text
    assert "| en (this build) | 5 | 0 | 0 | 0 | 0 | 4 | 7 | 16 |" in text
    assert "| en (paper) | 4449 | 1312 | 4801 | 9132 | 5027 | 1910 | 45888 | 72519 |" in text
    assert "| zh | 20 | 19 | 14 | 7 | 7 | 6 | 1 |" in text  # the funnel stage's rows for zh: 11 ja sources + 9 TCONER texts, ...
    assert "| zh-TCREE | 3 | 0 |" in text and "| all | 21 | 13 |" in text
    assert "2 test row(s) still have their id" in text and "`sample` source" in text
    for source in params.release_data.sources.values():
        assert f"| {source.name} | {source.used_for} | {source.license} |" in text
    assert "$" not in text  # no placeholder left


def test_the_same_inputs_give_the_same_bytes(project):
    root, params = project
    first = params.release_data
    second = first.with_flags(out_dir=root / "again", metrics=root / "again.json")
    release.run(params, first)
    before = digests(first.out_dir)
    release.run(params, second)
    release.run(params, first)  # over the previous release
    assert digests(second.out_dir) == before == digests(first.out_dir)
    assert second.metrics.read_bytes() == first.metrics.read_bytes()
    assert len(before) == 1 + 2 * len(CELLS) - 1  # the card, a train and a test file per cell but zh-TCREE's test


def test_stale_split_metrics_are_refused_naming_file_and_cell(project):
    root, params = project
    split = params.split.metrics
    data = json.loads(split.read_text(encoding="utf-8"))
    data["cells"]["ja"]["TCREE"]["test"] = 4
    data["cells"]["zh"]["SCPOS-N"] = {"train": 1, "test": 0}
    split.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError) as caught:
        release.run(params, params.release_data)
    assert caught.value.lines() == [
        f"{split}: cells.ja.TCREE.test is 4, but the test file has 2 rows of ja/TCREE (stale metrics? rerun `dvc repro split`)",
        f"{split}: cells.zh.SCPOS-N.train is 1, but the train file has 0 rows of zh/SCPOS-N (stale metrics? rerun `dvc repro split`)",
    ]
    assert not params.release_data.out_dir.exists() and not params.release_data.metrics.exists()


def test_a_split_file_changed_after_validation_is_refused_by_the_gate_and_without_it_by_the_counts(project):
    root, params = project
    with params.split.test.open("a", encoding="utf-8") as fh:
        fh.write(params.split.test.read_text(encoding="utf-8").splitlines()[0] + "\n")  # one more en/SCNM test row
    with pytest.raises(GateError, match=rf"^release_data: refusing {params.split.test}: changed since validation"):
        release.run(params, params.release_data)
    with pytest.raises(DataError, match=rf"^{params.split.metrics}: cells\.en\.SCNM\.test is 2, but the test file has 3 rows"):
        release.run(params, params.release_data.model_copy(update={"gate": None}))
    assert not params.release_data.out_dir.exists()


def test_a_bad_row_is_named_by_file_and_line(project):
    root, params = project
    rows = [json.loads(line) for line in params.split.train.read_text(encoding="utf-8").splitlines()]
    rows[4]["output"] = "no marker here"
    write_jsonl(params.split.train, rows)
    cfg = params.release_data.model_copy(update={"gate": None})
    with pytest.raises(InputError) as caught:
        release.run(params, cfg)
    assert caught.value.lines()[0].startswith(f"{params.split.train}:5: ")
    assert not cfg.out_dir.exists()


def test_cli_prints_one_summary_line(project):
    root, params = project
    out = root / "elsewhere"
    result = runner.invoke(app, ["release-data", "--out-dir", str(out), "--params", str(root / "params.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output == f"release-data: {3 + 1 + len(CELLS)} configurations, 21 train and 13 test rows -> {out}\n"
    assert (out / "en-TCONER" / "test.parquet").is_file()


def test_an_empty_split_is_refused(project):
    root, params = project
    for path in (params.split.train, params.split.test):
        path.write_text("", encoding="utf-8")
    cfg = params.release_data.model_copy(update={"gate": None})
    with pytest.raises(DataError, match=rf"^{params.split.train}, {params.split.test}: no rows to release$"):
        release.run(params, cfg)
