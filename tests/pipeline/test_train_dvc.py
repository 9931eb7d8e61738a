"""The split -> train -> predict stages as DVC runs them (accelerate launch included), on a copy of the project."""

from __future__ import annotations

import json

import pytest
import yaml
from dvc_project import copy_project, dvc, seed_training_inputs
from tiny_model import tiny_model_dir  # noqa: F401


@pytest.mark.slow
def test_split_train_predict_stages_run_under_dvc(tmp_path, root, tiny_model_dir):  # noqa: F811
    project = copy_project(root, tmp_path / "project", stages=["split", "train", "predict"])
    mix, params = seed_training_inputs(project, tiny_model_dir,
                                       predict=dict(max_rows_per_cell=1, max_new_tokens=4, threads=1))

    dvc(project, "repro")
    split = json.loads((project / "metrics" / "split.json").read_text())
    assert split["train"] + split["test"] == len(mix) and split["cells_without_test"] == 0
    train = json.loads((project / "metrics" / "train.json").read_text())
    assert train["optimizer_steps"] == 3 and train["distributed_type"] == "NO"
    assert (project / "models" / "oiellm" / "model.safetensors").exists()
    assert (project / "reports" / "train_loss.png").exists()
    predictions = (project / "data" / "processed" / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 9  # 3 sub-datasets x 3 languages, one row each

    assert "up to date" in dvc(project, "status").stdout.lower()
    params["predict"]["max_new_tokens"] = 5
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    status = dvc(project, "status", "--json").stdout
    assert set(json.loads(status)) == {"predict"}
