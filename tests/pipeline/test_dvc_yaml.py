"""dvc.yaml takes its paths from params.yaml: what DVC cannot interpolate is kept in step by these checks."""

from __future__ import annotations

import re

import yaml

from mmm import config


def test_assemble_depends_on_the_kept_file_of_every_item_it_assembles(root):
    stage = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["assemble"]
    named = [m.group(1) for dep in stage["deps"] if (m := re.fullmatch(r"\$\{filter\.items\.(\w+)\.kept\}", dep))]
    assert named == config.load(root / "params.yaml").assemble.items


def test_no_stage_names_a_data_path_itself(root):
    """Every data, model, metrics and report path of a stage is a `${...}` reference to params.yaml."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    literal = []
    for name, stage in stages.items():
        body = stage.get("do", stage)
        for kind in ("deps", "outs", "metrics", "plots"):
            for entry in body.get(kind, []):
                path = next(iter(entry)) if isinstance(entry, dict) else entry
                if not path.startswith(("${", "src/", "stages/")):
                    literal.append(f"{name}.{kind}: {path}")
    assert literal == []


def test_the_train_stage_depends_on_every_train_param_but_the_checkpoint_settings(root):
    """A new train key must be listed in dvc.yaml; changing how a run is checkpointed reruns nothing."""
    from mmm.config import RESUME_KEYS, TrainConfig

    listed = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["train"]["params"]
    assert listed == [f"train.{key}" for key in TrainConfig.model_fields if key not in RESUME_KEYS]
    assert set(RESUME_KEYS) == {"checkpoints", "checkpoint_every", "resume"}


def test_the_predict_stage_depends_on_every_predict_param_but_where_partials_wait_and_requests_in_flight(root):
    """A new predict key must be listed in dvc.yaml; the partial file's folder and the concurrency rerun nothing."""
    from mmm.config import PREDICT_RUN_KEYS, PredictConfig

    stage = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["predict"]
    assert stage["params"] == [f"predict.{key}" for key in PredictConfig.model_fields if key not in PREDICT_RUN_KEYS]
    assert set(PREDICT_RUN_KEYS) == {"checkpoints", "concurrency"}
    assert "${predict.checkpoints}" not in str(stage)  # resumable state is no out: DVC would delete it before a rerun


def test_validate_reads_the_rules_and_lang_of_every_filter_item(root):
    """The gate exempts a waived rule's languages (mmm.validation.waivers): a new filter item must be listed."""
    listed = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["validate"]["params"]
    items = config.load(root / "params.yaml").filter.items
    read = [f"filter.items.{name}.{key}" for name in items for key in ("rules", "lang")]
    assert sorted(p for p in listed if p.startswith("filter.")) == sorted(read)


def _resolve(text: str, params: dict) -> str:
    """``${a.b.c}`` references replaced by their params.yaml value, as DVC interpolates them."""

    def value(match: re.Match) -> str:
        node = params
        for key in match.group(1).split("."):
            node = node[key]
        return str(node)

    return re.sub(r"\$\{([\w.]+)\}", value, text)


def test_the_funnel_depends_on_every_metrics_file_it_reads(root):
    """mmm.funnel traces each assembled filter item through the params: a new item or stage must be listed."""
    from mmm import funnel

    raw = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    stage = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["funnel"]
    listed = [_resolve(dep, raw) for dep in stage["deps"] if dep.startswith("${")]
    read = [path.relative_to(root).as_posix() for path in funnel.inputs(config.load(root / "params.yaml"))]
    assert sorted(listed) == sorted(read)
    items = config.load(root / "params.yaml").filter.items
    assert sorted(p for p in stage["params"] if p.startswith("filter.")) == sorted(f"filter.items.{name}.lang" for name in items)


def test_every_top_level_plot_reads_a_git_tracked_stage_output(root):
    """`dvc plots diff main <exp>` reads plot data from git: each file is a stage output with cache: false."""
    pipeline = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))
    uncached = {
        next(iter(entry))
        for stage in pipeline["stages"].values()
        for kind in ("outs", "metrics", "plots")
        for entry in stage.get("do", stage).get(kind, [])
        if isinstance(entry, dict) and next(iter(entry.values())).get("cache") is False
    }
    read = []
    for definition in pipeline["plots"]:
        plot_id, props = next(iter(definition.items()))
        read += list(props["y"]) if isinstance(props["y"], dict) else [plot_id]
    assert read and all(path.startswith("${") for path in read)
    assert sorted(set(read) - uncached) == []
    assert {props.get("template") for definition in pipeline["plots"] for props in definition.values()} <= {
        "bar_horizontal", "bar_horizontal_sorted", "linear", "simple", "smooth", "scatter"}  # DVC's built-in templates


def test_the_release_depends_on_every_file_it_reads(root):
    """mmm.release reads the split files, the gate and the card's metrics files (the funnel's inputs, its output and
    the ingest metrics): a new item or stage must be listed; it reads each filter item's lang as the funnel does."""
    from mmm.release import card

    raw = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    stages = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    stage = stages["release_data"]
    params = config.load(root / "params.yaml")
    listed = [_resolve(dep, raw) for dep in stage["deps"] if dep.startswith("${")]
    cfg = params.release_data
    read = [path.relative_to(root).as_posix() for path in [cfg.train, cfg.test, cfg.gate, *card.inputs(params)]]
    assert sorted(listed) == sorted(read)
    assert (cfg.train, cfg.test, cfg.gate) == (params.split.train, params.split.test, params.validation.gate)
    assert [p for p in stage["params"] if p != "release_data"] == [p for p in stages["funnel"]["params"] if p != "funnel"]


def test_release_model_depends_on_what_it_reads_and_on_the_train_params_its_card_shows(root):
    """mmm.release_model.inputs and TrainConfig.to_params are what the stage reads: a new one must be listed."""
    from mmm import release_model

    raw = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    params = config.load(root / "params.yaml")
    stage = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["release_model"]
    listed = [_resolve(dep, raw) for dep in stage["deps"] if dep.startswith("${")]
    assert sorted(listed) == sorted(path.relative_to(root).as_posix() for path in release_model.inputs(params))
    shown = [f"train.{key}" for key in params.train.to_params()]
    assert sorted(p for p in stage["params"] if p.startswith("train.")) == sorted(shown)
    assert "release_model" in stage["params"]
