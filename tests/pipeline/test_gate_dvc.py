"""Issue 14, point 1: a failed validation stops training under real `dvc repro` (split -> validate -> train copy)."""

from __future__ import annotations

import json

import pytest
import yaml
from dvc_project import copy_project, dvc, seed_training_inputs
from tiny_model import tiny_model_dir  # noqa: F401

pytestmark = pytest.mark.slow


def add_row(path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def residual_japanese(rows_file) -> dict:
    """An English SCNM row of ``rows_file`` with Japanese left in its text, under a new id."""
    rows = [json.loads(line) for line in rows_file.read_text(encoding="utf-8").splitlines()]
    row = next(r for r in rows if r["lang"] == "en" and r["dataset"] == "SCNM")
    return {**row, "id": "residual-ja", "input": "駅 " + row["input"]}


def test_a_failed_validation_stops_training(tmp_path, root, tiny_model_dir):  # noqa: F811
    project = copy_project(root, tmp_path / "project", stages=["split", "validate", "train"])
    gate_path = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))["validate"]["gate"]
    seed_training_inputs(project, tiny_model_dir, train=dict(gate=gate_path))
    dvc(project, "repro")  # built: split, a passed gate, a trained model
    gate = project / gate_path
    assert json.loads(gate.read_text())["passed"] is True
    trained = (project / "metrics" / "train.json").read_bytes()
    assert "up to date" in dvc(project, "status").stdout.lower()

    # the reproduction: a bad row in the training split after it was built
    train_file = project / "data" / "processed" / "split" / "train.jsonl"
    add_row(train_file, residual_japanese(train_file))
    failed = dvc(project, "repro", "-s", "validate", check=False)
    assert failed.returncode != 0 and "rule residual_japanese" in failed.stdout + failed.stderr
    assert json.loads(gate.read_text())["passed"] is False

    refused = dvc(project, "repro", "-s", "train", check=False)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0, said
    assert "error: train: refusing data/processed/split/train.jsonl: the validation gate failed" in said, said
    assert "mmm.train" not in said  # no log line of the training code: it never started
    assert not (project / "metrics" / "train.json").exists() or (project / "metrics" / "train.json").read_bytes() == trained

    # a full repro, with the bad row upstream of the split (where the real pipeline's data comes from), stops at validate
    dvc(project, "checkout", "--force")
    add_row(project / "data" / "processed" / "mmm.jsonl", residual_japanese(train_file))
    stopped = dvc(project, "repro", check=False)
    said = stopped.stdout + stopped.stderr
    assert stopped.returncode != 0 and "Running stage 'validate'" in said, said
    assert "Running stage 'train'" not in said, said
