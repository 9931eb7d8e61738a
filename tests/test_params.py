"""`mmm.params`: sections and the foreach items the filter / translate stages are started for."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mmm import params


@pytest.fixture
def params_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("filter:\n  items:\n    en: {input: a.jsonl, lang: en}\n    zh: {input: b.jsonl, lang: zh}\n",
                    encoding="utf-8")
    return path


def test_foreach_item_returns_the_item(params_file):
    assert params.foreach_item("filter", "zh", params_file) == {"input": "b.jsonl", "lang": "zh"}


def test_unknown_item_exits_naming_the_section_and_the_items(params_file):
    with pytest.raises(SystemExit) as exit_info:
        params.foreach_item("filter", "ja", params_file)
    assert str(exit_info.value) == f"{params_file} filter.items has no 'ja' (items: en, zh)"


def test_missing_item_exits_with_usage(params_file):
    with pytest.raises(SystemExit) as exit_info:
        params.foreach_item("filter", None, params_file)
    assert "usage:" in str(exit_info.value) and "filter.items: en, zh" in str(exit_info.value)


def test_missing_section_is_a_clear_error(params_file):
    with pytest.raises(KeyError, match="no 'translate' section"):
        params.foreach_item("translate", "en", params_file)


@pytest.mark.parametrize("stage", ["filter", "translate"])
def test_stage_scripts_exit_cleanly_on_an_unknown_item(root, stage):
    result = subprocess.run([sys.executable, f"stages/{stage}.py", "nope"], cwd=root, capture_output=True, text=True)
    assert result.returncode == 1
    assert f"params.yaml {stage}.items has no 'nope' (items: " in result.stderr and "en, zh" in result.stderr
    assert "Traceback" not in result.stderr


def test_params_read_like_dvc_reads_them(tmp_path):
    """`dvc exp run -S` drops quotes YAML 1.2 does not need; the stages must still see the same values."""
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  mixed_precision: no\n  learning_rate: 1e-5\n  seed: 42\n  threads: null\n", encoding="utf-8")
    assert params.section("train", path) == {"mixed_precision": "no", "learning_rate": 1e-5, "seed": 42, "threads": None}
