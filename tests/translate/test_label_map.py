"""Rule-based label mapping: every label of the sample maps; any gap fails the stage, listed in full."""

from __future__ import annotations

import json

import pytest
from translate_fakes import read_jsonl, references, sources, write_jsonl
from typer.testing import CliRunner

from configs import write_params
from mmm.cli import app
from mmm.records import Sample
from mmm.translate import label_map
from mmm.translate.label_map import LabelMapError


def test_the_sample_maps_to_exactly_the_reference_labels(tmp_path, sample_dir):
    src = write_jsonl(tmp_path / "sources.jsonl", sources(sample_dir))
    metrics = label_map.run(src, tmp_path / "labels", ["en", "zh"], tmp_path / "label_map.json", "ja")
    for lang in ("en", "zh"):
        mapped = read_jsonl(tmp_path / "labels" / f"{lang}.jsonl")
        assert len(mapped) == 252 and {r["labels_lang"] for r in mapped} == {lang} and {r["lang"] for r in mapped} == {"ja"}
        refs = {r["id"]: Sample.from_record(r) for r in references(sample_dir, lang)}
        for row in mapped:
            got, ref = Sample.from_record(row), refs[row["id"]]
            assert (got.text_label, got.word_labels(), got.instruct) == (ref.text_label, ref.word_labels(), ref.instruct)
        assert metrics["langs"][lang]["by_dataset"]["SCNM"]["rows"] == 42
    first = read_jsonl(tmp_path / "labels" / "zh.jsonl")[0]
    assert first["output"].startswith("社会/NER/:政治组织名;横浜市")  # text and entities stay Japanese
    assert json.loads((tmp_path / "label_map.json").read_text())["input_rows"] == 252


def row(id_: str, dataset: str, input_: str, output: str, lang: str = "ja") -> dict:
    return {"id": id_, "lang": lang, "dataset": dataset, "input": input_, "output": output}


def test_every_unmapped_label_is_listed_with_count_and_example_and_nothing_is_written(tmp_path):
    rows = [
        row("a1", "SCNM", "東京で会議。/NER", "社会/NER/:宗教団体名;東京会議"),
        row("a2", "SCNM", "京都で会議。/NER", "宗教/NER/:宗教団体名;京都会議:地名;京都"),
        row("a3", "TCREE", "AがBを買った。/Event Extraction", "経済/Event Extraction/:A;購入;B"),
        row("a4", "TCONER", "Ada wrote notes./NER", "computing/NER/:person;Ada", lang="en"),
        row("a5", "SCNM", "大阪。/NER", "社会/NER/:地名;大阪"),
    ]
    with pytest.raises(LabelMapError) as error:
        label_map.run(write_jsonl(tmp_path / "s.jsonl", rows), tmp_path / "labels", ["en", "zh"], tmp_path / "m.json", "ja")
    message = str(error.value)
    for lang in ("en", "zh"):
        assert f"SCNM word-level label '宗教団体名' -> {lang}: 2 row(s), e.g. a1" in message
        assert f"SCNM text-level label '宗教' -> {lang}: 1 row(s), e.g. a2" in message
        assert f"TCREE word-level label '購入' -> {lang}: 1 row(s), e.g. a3" in message
    assert "1 row(s) in 'en', not the source language (e.g. a4)" in message
    assert "nothing was written" in message and "registry.yaml" in message
    assert not (tmp_path / "labels").exists() and not (tmp_path / "m.json").exists()


def test_open_domain_rows_have_no_rule_mapping(tmp_path):
    rows = [row("t1", "TCONER", "エイダはノートを書いた。/NER", "計算機/NER/:人物;エイダ")]
    with pytest.raises(LabelMapError, match="TCONER: open-domain labels have no rule mapping \\(1 row\\(s\\), e.g. t1\\)"):
        label_map.run(write_jsonl(tmp_path / "s.jsonl", rows), tmp_path / "labels", ["en"], None, "ja")


def test_cli_fails_cleanly_and_succeeds_on_good_input(tmp_path, sample_dir):
    bad = write_jsonl(tmp_path / "bad.jsonl", [row("a1", "SCNM", "東京。/NER", "社会/NER/:宗教団体名;東京")])
    params = write_params(tmp_path / "params.yaml", label_map={"metrics": str(tmp_path / "m.json")})
    runner = CliRunner()
    result = runner.invoke(app, ["label-map", "--params", str(params), str(bad), "--out-dir", str(tmp_path / "o")])
    assert result.exit_code == 1 and "宗教団体名" in result.output and "Traceback" not in result.output
    good = write_jsonl(tmp_path / "good.jsonl", sources(sample_dir)[:10])
    result = runner.invoke(app, ["label-map", "--params", str(params), str(good), "--out-dir", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "label-map: 10 rows, every label mapped -> en 10, zh 10" in result.output
    broken = write_jsonl(tmp_path / "broken.jsonl", [row("b1", "SCNM", "東京。", "社会/NER/")])
    result = runner.invoke(app, ["label-map", "--params", str(params), str(broken), "--out-dir", str(tmp_path / "o")])
    assert result.exit_code == 1 and "broken.jsonl:1: input does not end with the instruction" in result.output
