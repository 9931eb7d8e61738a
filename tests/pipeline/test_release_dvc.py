"""Issue 17, point 1: `dvc repro release_data` on a copy of the project (synthetic split, metrics and a passed gate):
every configuration loads offline with the split's counts, a forced rerun gives the same bytes (dvc.lock unchanged),
and a split file changed after validation stops the stage."""

from __future__ import annotations

import json

import pytest
import yaml
from dvc_project import copy_project, dvc
from release_project import seed

pytestmark = pytest.mark.slow  # four `dvc` subprocesses


def test_repro_releases_a_folder_datasets_loads_and_a_rerun_changes_no_byte(tmp_path, root, monkeypatch):
    project = copy_project(root, tmp_path / "project", stages=["release_data"])
    params = seed(project, root)
    built = dvc(project, "repro")
    assert "release-data: 11 configurations, 21 train and 13 test rows -> data/release" in built.stdout, built.stdout

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from datasets import load_dataset

    cells = json.loads(params.split.metrics.read_text(encoding="utf-8"))["cells"]
    card = (project / "data" / "release" / "README.md").read_text(encoding="utf-8")
    names = [entry["config_name"] for entry in yaml.safe_load(card.split("---\n", 2)[1])["configs"]]
    for name in names:
        lang, _, dataset = name.partition("-")
        chosen = [(lg, ds) for lg in cells for ds in cells[lg] if name == "all" or (lg == lang and dataset in ("", ds))]
        wanted = {split: sum(cells[lg][ds][split] for lg, ds in chosen) for split in ("train", "test")}
        loaded = load_dataset(str(project / "data" / "release"), name, cache_dir=str(tmp_path / "hf-cache"))
        assert {split: rows.num_rows for split, rows in loaded.items()} == {s: n for s, n in wanted.items() if n}, name

    lock, metrics = (project / "dvc.lock").read_bytes(), (project / "metrics" / "release.json").read_bytes()
    assert "release_data" in dvc(project, "repro", "-f").stdout
    assert (project / "dvc.lock").read_bytes() == lock  # the folder's hash too: the same Parquet and card bytes
    assert (project / "metrics" / "release.json").read_bytes() == metrics

    with params.split.train.open("a", encoding="utf-8") as fh:
        fh.write(params.split.train.read_text(encoding="utf-8").splitlines()[0] + "\n")
    refused = dvc(project, "repro", check=False)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0, said
    assert "error: release_data: refusing data/processed/split/train.jsonl: changed since validation" in said, said
