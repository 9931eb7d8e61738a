"""Human review of translated rows: a sheet out, the overrides file in, applied by the translate stage."""

from __future__ import annotations

import csv

import pytest
import yaml
from translate_fakes import ReferenceTranslator, read_jsonl, references
from typer.testing import CliRunner

from configs import PARAMS, write_params
from mmm.cli import app
from mmm.io import InputError
from mmm.translate.review import DROPPED, Overrides, apply_sheet, export_sheet
from test_translate_openai import files, en_rows, run  # noqa: F401  (fixtures)


def _fill(sheet, decisions: dict[str, dict[str, str]]) -> None:
    rows = list(csv.DictReader(open(sheet, encoding="utf-8", newline="")))
    for row in rows:
        row.update(decisions.get(row["id"], {}))
    with open(sheet, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_a_filled_sheet_corrects_and_drops_rows_in_the_next_translate_run(fake_openai, openai_config, files, en_rows,  # noqa: F811 (fixtures)
                                                                          sample_dir, tmp_path):
    fake_openai.answer = ReferenceTranslator(en_rows, references(sample_dir, "en"), "ja-en")
    run(files, openai_config)
    sent = len(fake_openai.calls)
    sheet = tmp_path / "review.csv"
    assert export_sheet(files["input"], files["out"], files["failed"], sheet) == len(en_rows)
    scnm = next(r for r in read_jsonl(files["out"]) if r["dataset"] == "SCNM")
    dropped = next(r["id"] for r in read_jsonl(files["out"]) if r["id"] != scnm["id"])
    text, task = scnm["input"].rsplit("/", 1)
    corrected = {"new_input": f"{text} (reviewed)/{task}", "new_output": scnm["output"]}
    _fill(sheet, {scnm["id"]: corrected, dropped: {"drop": "meaning lost"}})
    overrides = tmp_path / "overrides.yaml"
    assert apply_sheet(sheet, overrides) == {"corrected": 1, "dropped": 1}
    assert yaml.safe_load(overrides.read_text(encoding="utf-8"))["drop"] == {dropped: "meaning lost"}

    from mmm.translate.run import translate_file
    from test_translate_openai import SETTINGS

    metrics = translate_file(files["input"], "en", files["out"], files["failed"], SETTINGS, openai_config,
                             files["metrics"], overrides=overrides)
    assert len(fake_openai.calls) == sent  # the LLM answers come from the cache; the review is applied on top
    assert metrics["review"] == {"corrected": 1, "rescued": 0, "dropped": 1}
    out = {r["id"]: r for r in read_jsonl(files["out"])}
    assert out[scnm["id"]]["input"] == corrected["new_input"] and dropped not in out
    [lost] = read_jsonl(files["failed"])
    assert (lost["id"], lost["reasons"], lost["detail"]) == (dropped, [DROPPED], "meaning lost")
    assert metrics["translated"] + metrics["failed"] == metrics["input_rows"] == len(en_rows)


def test_overrides_that_do_not_fit_are_named_and_nothing_is_written(fake_openai, openai_config, files, en_rows,  # noqa: F811 (fixtures)
                                                                   sample_dir, tmp_path):
    fake_openai.answer = ReferenceTranslator(en_rows, references(sample_dir, "en"), "ja-en")
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(yaml.safe_dump({"records": {"nope": {"input": "x/NER", "output": "y/NER/"},
                                                     en_rows[0]["id"]: {"input": "no task marker", "output": "z"}},
                                         "drop": {}}), encoding="utf-8")
    from mmm.translate.run import translate_file
    from test_translate_openai import SETTINGS

    with pytest.raises(InputError) as caught:
        translate_file(files["input"], "en", files["out"], files["failed"], SETTINGS, openai_config, files["metrics"],
                       overrides=overrides)
    lines = caught.value.lines()
    assert any("nope: not a row of this item" in line for line in lines)
    assert any(f"{en_rows[0]['id']}: the corrected record does not parse" in line for line in lines)
    assert not files["out"].exists()


@pytest.mark.parametrize("text, message", [
    ("records: {a: {input: x}}\ndrop: {}\n", "a: expected {input, output} strings"),
    ("records: {}\ndrop: {a: ''}\n", "drop: a: expected a reason"),
    ("records: {a: {input: x, output: y}}\ndrop: {a: why}\n", "a: both corrected and dropped"),
    ("labels: {}\n", "expected a mapping with 'records' and 'drop' only"),
])
def test_a_malformed_overrides_file_is_refused(tmp_path, text, message):
    path = tmp_path / "o.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        Overrides.load(path)


def test_a_sheet_cell_pair_must_be_complete_and_exclusive(tmp_path):
    sheet = tmp_path / "s.csv"
    sheet.write_text("id,new_input,new_output,drop\na,x/NER,,\nb,x/NER,y/NER/,why\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        apply_sheet(sheet, tmp_path / "o.yaml")
    assert [str(p) for p in caught.value.problems] == [
        f"{sheet}:2: a: a correction needs both new_input and new_output",
        f"{sheet}:3: b: fill new_input/new_output or drop, not both",
    ]
    assert not (tmp_path / "o.yaml").exists()


def test_the_review_commands_name_an_item_without_review_paths(tmp_path):
    items = PARAMS.model_dump(mode="json", by_alias=True)["translate"]["items"]
    items["en"] |= {"overrides": None, "review_sheet": None}
    params = write_params(tmp_path / "params.yaml", translate={"items": items})
    result = CliRunner().invoke(app, ["review", "export", "--item", "en", "--params", str(params)])
    assert result.exit_code == 1 and "translate.items.en: set overrides and review_sheet to review it" in result.output
