"""Changing one param reruns only the stages that read it: real `dvc status` on a copy of the whole pipeline.

No stage runs: every declared output gets a stand-in file and `dvc commit` records the pipeline
as up to date (a dvc.lock of the real dvc.yaml, params and code). Then one param changes and
`dvc status --json` must name exactly the stages that read it; the rest follows by data (`dvc dag`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest
import yaml
from dvc_project import copy_project, dvc, env

from mmm.config import RESUME_KEYS

pytestmark = pytest.mark.slow  # about nine `dvc` subprocesses on a copy of the project

LLM_STAGES = {"tconer_label", "translate@en", "translate@zh", "translate@tconer_ja", "translate@tconer_zh"}


def stand_in_outputs(project: Path) -> None:
    """A small file for every output (a folder gets one inside), and for deps that live inside an output folder."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        outs = [out.def_path for stage in repo.index.stages for out in stage.outs]
        deps = [dep.def_path for stage in repo.index.stages for dep in stage.deps if hasattr(dep, "def_path")]
    folders = [Path(out) for out in outs if not Path(out).suffix]
    for out in outs:
        path = project / out
        if Path(out) in folders:
            path.mkdir(parents=True, exist_ok=True)
            (path / "stand-in.txt").write_text(f"stand-in for {out}\n")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"stand-in for {out}\n")
    for dep in deps:
        path = project / dep
        if not path.exists() and any(Path(dep).is_relative_to(folder) for folder in folders):
            path.write_text(f"stand-in for {dep}\n")


@pytest.fixture(scope="module")
def committed(tmp_path_factory, root) -> Path:
    project = copy_project(root, tmp_path_factory.mktemp("pipeline") / "project")
    stand_in_outputs(project)
    dvc(project, "commit", "--force", "--quiet")
    assert json.loads(dvc(project, "status", "--json").stdout) == {}
    return project


def status_with(project: Path, changes: dict[str, object]) -> dict:
    """``dvc status --json`` after setting dotted params; params.yaml is restored afterwards."""
    params_file = project / "params.yaml"
    original = params_file.read_text(encoding="utf-8")
    params = yaml.safe_load(original)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = params
        for key in parents:
            node = node[key]
        assert leaf in node, f"{dotted} is not in params.yaml"
        node[leaf] = value
    params_file.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    try:
        return json.loads(dvc(project, "status", "--json").stdout)
    finally:
        params_file.write_text(original, encoding="utf-8")


def changed_params(status: dict) -> dict[str, set[str]]:
    """Stage -> the tracked params ``dvc status`` reports as changed (only param changes are expected here)."""
    result = {}
    for stage, entries in status.items():
        names = set()
        for entry in entries:
            assert isinstance(entry, dict), f"{stage}: {entry}"  # e.g. "changed command"
            deps = entry.get("changed deps", {})
            assert set(deps) <= {"params.yaml"} and "changed outs" not in entry, f"{stage}: {entry}"
            names |= set(deps.get("params.yaml", {}))
        result[stage] = names
    return result


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"evaluate.bootstrap_samples": 10}, {"evaluate": {"evaluate"}}),
        ({"split.seed": 7}, {"split": {"split"}}),
        # the gate reads each filter item's lang (and rules): the languages a waived rule is not checked for;
        # the funnel and the dataset card read it too: the language an item's rows count for
        ({"filter.items.zh.lang": "en"}, {"filter@zh": {"filter.items.zh"}, "validate": {"filter.items.zh.lang"},
                                          "funnel": {"filter.items.zh.lang"}, "release_data": {"filter.items.zh.lang"}}),
        ({"llm.model": "another-model"}, {stage: {"llm"} for stage in LLM_STAGES}),
    ],
    ids=["evaluate.bootstrap_samples", "split.seed", "filter.items.zh.lang", "llm.model"],
)
def test_one_param_marks_only_the_stages_that_read_it(committed, changes, expected):
    assert changed_params(status_with(committed, changes)) == expected


def test_the_rest_follows_by_data(committed):
    """A changed split reaches validate, train, predict, evaluate, the funnel and both releases through their deps,
    and nothing else."""
    from dvc.repo import Repo

    with Repo(str(committed)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        by_name = {stage.name: stage for stage in graph.nodes}
        downstream = {s.name for s in nx.ancestors(graph, by_name["split"])}
        upstream_of_label = {s.name for s in nx.descendants(graph, by_name["tconer_label"])}
    assert downstream == {"validate", "train", "predict", "evaluate", "funnel", "release_data", "release_model"}
    assert upstream_of_label == {"tconer_convert", "convert_base"}


def test_dvc_yaml_consumes_every_value_the_paper_profile_changes(committed, root):
    """Apply params/paper.yaml to the copy: every changed key is a param of some stage, no other stage changes."""
    params_file = committed / "params.yaml"
    original = params_file.read_text(encoding="utf-8")
    try:
        applied = subprocess.run([sys.executable, "-m", "mmm.cli", "profile", "apply", str(root / "params" / "paper.yaml")],
                                 cwd=committed, env=env(), capture_output=True, text=True)
        assert applied.returncode == 0, applied.stderr
        keys = [line.strip().split(":", 1)[0] for line in applied.stdout.splitlines() if line.startswith("  ")]
        assert "train.method" in keys and "llm.model" in keys
        status = json.loads(dvc(committed, "status", "--json").stdout)
    finally:
        params_file.write_text(original, encoding="utf-8")
    tracked = {name for entries in status.values() for entry in entries if isinstance(entry, dict)
               for name in entry.get("changed deps", {}).get("params.yaml", {})}
    # how a training run is made resumable is deliberately no DVC param (config.RESUME_KEYS): it changes no result
    run_settings = {f"train.{key}" for key in RESUME_KEYS}
    unconsumed = [key for key in keys if key not in run_settings
                  and not any(key == name or key.startswith(name + ".") for name in tracked)]
    assert unconsumed == [], f"params/paper.yaml changes values no stage of dvc.yaml reads: {unconsumed}"
    # validate reads split.leakage and filter.items.ja.rules: the gate checks what the split and the filter promise;
    # the model release reads the base model's hub id and licence, and the train params its card shows
    assert set(status) == {"ingest", "tconer_convert", "filter@ja", "split", "validate", "train", "predict",
                           "release_data", "release_model"} | LLM_STAGES
    # train follows train.base_model: the profile's LLaMA folder is its dependency now (not in this copy)
    train_deps = next(e["changed deps"] for e in status["train"] if isinstance(e, dict) and "changed deps" in e)
    assert train_deps["models/base/Meta-Llama-3-8B"] == "deleted"


def test_artifacts_name_the_released_dataset_and_model(committed):
    from dvc.repo import Repo

    with Repo(str(committed)) as repo:
        artifacts = repo.artifacts.read()["dvc.yaml"]
        outputs = {out.def_path for stage in repo.index.stages for out in stage.outs}
    assert {name: (a.path, a.type) for name, a in artifacts.items()} == {
        "mmm-dataset": ("data/release", "dataset"),
        "oiellm": ("models/release/oiellm", "model"),
    }
    for artifact in artifacts.values():
        assert artifact.path in outputs, f"{artifact.path} is not a stage output"
        assert artifact.desc and artifact.labels
