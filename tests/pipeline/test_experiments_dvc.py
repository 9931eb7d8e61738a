"""The MRE ablation as users run it: `dvc exp run -S train.target=text_only` beside the joint baseline.

A git-initialised copy of split -> train -> predict -> evaluate -> release_model with a tiny model: the baseline is
committed, the experiment runs through DVC, and `dvc exp show` / `dvc metrics diff` compare them.
The model of the baseline is then fetched back by its artifact name with `dvc artifacts get`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from dvc_project import copy_project, dvc, env, seed_training_inputs
from tiny_model import tiny_model_dir  # noqa: F401

pytestmark = pytest.mark.slow
STAGES = ("split", "train", "predict", "evaluate", "release_model")


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, env=env(), capture_output=True, text=True)
    assert result.returncode == 0, f"git {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def scores(evaluate_json: dict) -> dict[str, set[str]]:
    """``lang/dataset`` -> the levels scored there (TL, WL, ALL)."""
    return {f"{lang}/{dataset}": {level for level in ("TL", "WL", "ALL") if level in cell}
            for lang, by_dataset in evaluate_json["metrics"].items() for dataset, cell in by_dataset.items()}


@pytest.fixture
def git_project(tmp_path, root, tiny_model_dir, monkeypatch):  # noqa: F811
    for name in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(name, "MMM test")
    for name in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(name, "mmm-test@localhost")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    project = copy_project(root, tmp_path / "project", stages=STAGES)
    git(project, "init", "-q", "-b", "main")
    dvc(project, "config", "--unset", "core.no_scm")
    dvc(project, "remote", "add", "-d", "local", str(tmp_path / "storage"))
    seed_training_inputs(project, tiny_model_dir, predict=dict(max_rows_per_cell=1, max_new_tokens=8, threads=1),
                         evaluate=dict(bootstrap_samples=20))
    return project


def test_text_only_experiment_beside_the_joint_baseline(git_project, tmp_path):
    project = git_project
    dvc(project, "repro")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "joint baseline")
    baseline = json.loads((project / "metrics" / "evaluate.json").read_text())
    assert baseline["target"] == "joint"
    assert all(levels == {"TL", "WL", "ALL"} for levels in scores(baseline).values())

    # the released model by name: push, tag the version, fetch it back from the repo
    dvc(project, "push")
    git(project, "tag", "-a", "oiellm@v0.1.0", "-m", "OIELLM trained on the MMM sample (joint)")
    fetched = tmp_path / "fetched-oiellm"
    dvc(tmp_path, "artifacts", "get", str(project), "oiellm", "-o", str(fetched))
    model = "model.safetensors"
    assert hashlib.sha256((fetched / model).read_bytes()).digest() == \
        hashlib.sha256((project / "models" / "oiellm" / model).read_bytes()).digest()
    assert (fetched / "README.md").read_bytes() == (project / "models" / "release" / "oiellm" / "README.md").read_bytes()

    run = dvc(project, "exp", "run", "-n", "text-only", "-S", "train.target=text_only")
    assert "Running stage 'split'" not in run.stdout  # only the stages that read train.* and their downstream
    assert "Running stage 'train'" in run.stdout and "Running stage 'evaluate'" in run.stdout
    ablation = json.loads((project / "metrics" / "evaluate.json").read_text())
    assert ablation["target"] == "text_only"
    assert set(scores(ablation)) == set(scores(baseline))
    assert all(levels == {"TL"} for levels in scores(ablation).values())  # a text-only model is scored on TL only

    show = json.loads(dvc(project, "exp", "show", "--json").stdout)
    rows = {}
    for commit in show:
        for entry in [commit] + [exp for exp_list in commit.get("experiments") or [] for exp in exp_list["revs"]]:
            data = entry.get("data") or {}
            rows[entry.get("name") or entry["rev"]] = data
    assert "text-only" in rows
    targets = {name: data["params"]["params.yaml"]["data"]["train"]["target"] for name, data in rows.items()
               if data.get("params")}
    assert targets["text-only"] == "text_only" and "joint" in targets.values()
    evaluate_metrics = rows["text-only"]["metrics"]["metrics/evaluate.json"]["data"]
    assert evaluate_metrics["target"] == "text_only"

    diff = json.loads(dvc(project, "metrics", "diff", "HEAD", "text-only", "--all", "--json").stdout)
    evaluate_diff = diff["metrics/evaluate.json"]
    first = next(iter(scores(baseline)))
    lang, dataset = first.split("/")
    tl = evaluate_diff[f"metrics.{lang}.{dataset}.TL"]
    assert tl["old"] == baseline["metrics"][lang][dataset]["TL"] and tl["new"] == ablation["metrics"][lang][dataset]["TL"]
    wl = evaluate_diff[f"metrics.{lang}.{dataset}.WL"]
    assert wl["old"] == baseline["metrics"][lang][dataset]["WL"] and wl["new"] is None  # no WL scored for text_only

    # the F1 plot data is in git (cache: false), so each commit and experiment has its own: one chart overlays them
    plots = json.loads(dvc(project, "plots", "diff", "main", "text-only", "--json").stdout)
    tl = plots["data"]["metrics/plots/f1/TL.json"][0]["content"]["data"]["values"]
    assert {(v["rev"], v["cell"], v["f1"]) for v in tl} == {
        (rev, cell, result["metrics"][cell.split("/")[0]][cell.split("/")[1]]["TL"])
        for rev, result in (("main", baseline), ("text-only", ablation)) for cell in scores(baseline)}
