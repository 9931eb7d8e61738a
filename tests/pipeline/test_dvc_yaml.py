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


def test_validate_reads_the_rules_and_lang_of_every_filter_item(root):
    """The gate exempts a waived rule's languages (mmm.validation.waivers): a new filter item must be listed."""
    listed = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["validate"]["params"]
    items = config.load(root / "params.yaml").filter.items
    read = [f"filter.items.{name}.{key}" for name in items for key in ("rules", "lang")]
    assert sorted(p for p in listed if p.startswith("filter.")) == sorted(read)
