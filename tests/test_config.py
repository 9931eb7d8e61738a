"""`mmm.config`: the typed params, read like DVC reads them, paths relative to the params file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import get_args

import pytest
from configs import write_params

from mmm import config, registry
from mmm.errors import ParamsError


def test_the_repository_params_load_and_resolve_paths_against_their_folder(root, tmp_path):
    here = os.getcwd()
    os.chdir(tmp_path)  # the working directory does not matter
    try:
        params = config.load(root / "params.yaml")
    finally:
        os.chdir(here)
    assert params.split.input == root / "data" / "processed" / "mmm.jsonl"
    assert params.train.out == root / "models" / "oiellm"
    assert config.load("params.yaml").split.input == Path("data/processed/mmm.jsonl")  # from the root: as written


def test_the_language_and_dataset_choices_are_the_registrys():
    assert set(get_args(config.Lang)) == set(registry.LANGS)
    assert set(get_args(config.Dataset)) == set(registry.DATASETS)


def test_yaml_is_read_by_the_1_2_rules_dvc_uses(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  mixed_precision: no\n  learning_rate: 1e-5\n", encoding="utf-8")
    assert config.read_yaml(path) == {"train": {"mixed_precision": "no", "learning_rate": 1e-5}}


def test_bad_yaml_names_the_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("split:\n  seed: [\n", encoding="utf-8")
    with pytest.raises(ParamsError, match=rf"{path}:3: not valid YAML"):
        config.load(path)


def test_cross_section_rules_are_checked(tmp_path):
    outside = write_params(tmp_path / "a.yaml", tconer={"source_files": [str(tmp_path / "mine.json")]},
                           assemble={"items": ["ja", "nope"]})
    with pytest.raises(ParamsError) as info:
        config.load(outside)
    message = str(info.value)
    assert f"tconer.source_files: {tmp_path / 'mine.json'} is not inside ingest.raw_dir" in message
    assert "assemble.items: nope not in filter.items" in message


def test_a_missing_section_and_a_secret_are_named(tmp_path, root):
    data = config.read_yaml(root / "params.yaml")
    del data["split"]
    data["llm"]["api_key"] = "sk-oops"
    with pytest.raises(ParamsError) as info:
        config.validate(data, "p.yaml", root)
    assert "p.yaml: split: missing" in str(info.value)
    assert "p.yaml: llm.api_key: must not be in params" in str(info.value) and "sk-oops" not in str(info.value)


def test_notes_name_only_inputs_no_stage_writes(root, tmp_path):
    assert config.missing_inputs(config.load(root / "params.yaml")) == []  # intermediate files are written by stages
    lonely = write_params(tmp_path / "p.yaml", train={"base_model": str(tmp_path / "llama")})
    assert config.missing_inputs(config.load(lonely)) == [
        f"train.base_model: {tmp_path / 'llama'} does not exist here and no stage writes it"]


def test_flags_are_validated_like_params(root):
    split = config.load(root / "params.yaml").split
    assert split.with_flags(seed=None) is split and split.with_flags(seed=7).seed == 7
    with pytest.raises(ParamsError, match="command line: seed: Input should be a valid integer"):
        split.with_flags(seed="x")


def test_filter_rules_default_to_every_content_rule_and_name_filters_reasons(root):
    from mmm import filters

    items = config.load(root / "params.yaml").filter.items
    assert all(item.rules == list(config.CONTENT_RULES) and item.waived == () for item in items.values())
    assert (*config.CONTENT_RULES, config.FORMAT_RULE) == filters.REASONS


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (["bad_format", "entity_not_in_text"], "bad_format always runs and is not listed"),
        (["entity_in_text"], "unknown rule(s) 'entity_in_text'; choose from residual_japanese, entity_not_in_text"),
        (["entity_not_in_text", "entity_not_in_text"], "a rule is listed twice"),
        ("entity_not_in_text", "Input should be a valid list"),
    ],
)
def test_a_wrong_filter_rule_choice_names_the_key(root, rules, message):
    data = config.read_yaml(root / "params.yaml")
    data["filter"]["items"]["ja"]["rules"] = rules
    with pytest.raises(ParamsError) as info:
        config.validate(data, "p.yaml", root)
    assert "p.yaml: filter.items.ja.rules: " in str(info.value) and message in str(info.value)


def test_an_empty_rule_choice_waives_both_content_rules(root):
    data = config.read_yaml(root / "params.yaml")
    data["filter"]["items"]["ja"]["rules"] = []
    assert config.validate(data, "p.yaml", root).filter.items["ja"].waived == config.CONTENT_RULES
