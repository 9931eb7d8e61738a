"""The gate record validate leaves, and train and predict refusing files it does not pass (before any model loads)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from configs import write_params
from mmm import config
from mmm.cli import app
from mmm.errors import ParamsError
from mmm.validation import gate

ROWS = [
    {"id": "a", "lang": "en", "dataset": "SCNM", "input": "Tom lives in Paris./NER", "output": "Location/NER/:Location;Paris"},
]
FILE_OF = {"train": "train.jsonl", "predict": "test.jsonl"}


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def project(tmp_path: Path) -> tuple[Path, Path]:
    """Params whose train and predict read files in ``tmp_path``, with models that do not exist."""
    record = tmp_path / "gate.json"
    for name in FILE_OF.values():
        write_rows(tmp_path / name, ROWS)
    params = write_params(
        tmp_path / "params.yaml", logs={"dir": str(tmp_path / "logs")}, validate={"gate": str(record)},
        release_data={"gate": str(record)},
        train={"gate": str(record), "base_model": str(tmp_path / "no-base-model"), "train_file": str(tmp_path / "train.jsonl"),
               "out": str(tmp_path / "model"), "metrics": str(tmp_path / "train.json"), "curve": str(tmp_path / "c.csv"),
               "plot": str(tmp_path / "c.png")},
        predict={"gate": str(record), "model": str(tmp_path / "no-model"), "test": str(tmp_path / "test.jsonl"),
                 "out": str(tmp_path / "p.jsonl"), "metrics": str(tmp_path / "p.json")})
    return params, record


def validated(record: Path, *files: Path, passed: bool = True) -> None:
    gate.write(record, passed, gate.record(record, files))


def test_the_record_names_files_relative_to_itself_and_sorted(tmp_path):
    (tmp_path / "data").mkdir()
    data = write_rows(tmp_path / "data" / "b.jsonl", ROWS)
    other = write_rows(tmp_path / "a.jsonl", ROWS[:0])
    record = tmp_path / "reports" / "gate.json"
    validated(record, data, other)
    stored = json.loads(record.read_text(encoding="utf-8"))
    assert list(stored["files"]) == ["../a.jsonl", "../data/b.jsonl"] and stored["passed"] is True
    assert stored["files"]["../a.jsonl"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # empty
    gate.require(record, data, "train")  # passes: listed, unchanged
    gate.require(None, tmp_path / "never-validated.jsonl", "train")  # gate: null turns the check off


@pytest.mark.parametrize("stage", ["train", "predict"])
@pytest.mark.parametrize(
    "case, why",
    [
        ("missing", "no validation gate record at"),
        ("failed", "the validation gate failed"),
        ("edited", "changed since validation (sha256 mismatch"),
        ("not_listed", "not validated (not among the files of"),
    ],
)
def test_train_and_predict_refuse_before_loading_a_model(tmp_path, stage, case, why):
    params, record = project(tmp_path)
    read = tmp_path / FILE_OF[stage]
    if case == "failed":
        validated(record, read, passed=False)
    elif case == "edited":
        validated(record, read)
        write_rows(read, ROWS + [{**ROWS[0], "id": "b", "input": "Tomは東京に住む。/NER"}])
    elif case == "not_listed":
        validated(record, tmp_path / FILE_OF["predict" if stage == "train" else "train"])
    result = CliRunner().invoke(app, [stage, "--params", str(params)])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert errors[0].startswith(f"error: {stage}: refusing {read}: {why}"), errors[0]
    assert "dvc repro validate" in errors[0] and "model folder" not in result.output  # before any model was looked at
    assert not (tmp_path / "model").exists() and not (tmp_path / "p.jsonl").exists()


@pytest.mark.parametrize("stage", ["train", "predict"])
def test_a_passed_gate_lets_the_stage_start(tmp_path, stage):
    params, record = project(tmp_path)
    validated(record, tmp_path / "train.jsonl", tmp_path / "test.jsonl")
    result = CliRunner().invoke(app, [stage, "--params", str(params)])
    # it got past the gate to the model, which this test does not provide
    model = tmp_path / ("no-base-model" if stage == "train" else "no-model")
    assert result.exit_code == 1 and "refusing" not in result.output, result.output
    assert f"error: {model}: no such model folder" in result.output, result.output


def test_train_and_predict_check_the_gate_validate_writes(tmp_path):
    params = write_params(tmp_path / "p.yaml", train={"gate": str(tmp_path / "elsewhere.json")}, predict={"gate": None})
    with pytest.raises(ParamsError, match=r"train\.gate: .*elsewhere\.json is not validate\.gate"):
        config.load(params)
    params = write_params(tmp_path / "r.yaml", release_data={"gate": str(tmp_path / "elsewhere.json")})
    with pytest.raises(ParamsError, match=r"release_data\.gate: .*elsewhere\.json is not validate\.gate"):
        config.load(params)
