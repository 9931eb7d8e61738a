"""`mmm profile apply`: the paper profile over params.yaml, and the merge rules behind it."""

from __future__ import annotations

import shutil

import pytest
import yaml
from typer.testing import CliRunner

from mmm import config, profile
from mmm.cli import app

runner = CliRunner()


@pytest.fixture
def params_copy(tmp_path, root):
    """params.yaml copied to a project-like folder (so relative paths resolve the same way)."""
    path = tmp_path / "params.yaml"
    shutil.copy(root / "params.yaml", path)
    return path


def test_every_key_of_the_paper_profile_exists_in_params(root):
    base, paper = profile.load(root / "params.yaml"), profile.load(root / "params" / "paper.yaml")
    assert profile.unknown_keys(base, paper) == []
    # every section the paper fixes is in the profile
    assert {"hub", "ingest", "tconer", "llm", "split", "train", "predict"} <= set(paper)


def test_the_paper_profile_gives_params_the_typed_config_accepts(params_copy, root):
    result = profile.apply(root / "params" / "paper.yaml", params_copy)
    assert result.written and result.changes
    paper = config.load(params_copy)  # the same models every command loads
    assert (paper.ingest.source, paper.hub.allow_network) == ("hub", True)
    assert [(s.id, s.split, s.data_files) for s in paper.ingest.hub] == [
        ("ganchengguang/MMM-dataset-Trainset", "train", "Train_Ja_*.json"),  # the originals, not the translations
        ("ganchengguang/MMM-datasets-Testset", "test", "test_Ja_*.json")]
    assert (paper.tconer.hub_id, paper.tconer.max_texts) == ("Universal-NER/Pile-NER-type", None)  # English complete
    assert paper.translate.items["tconer_ja"].sample == {"TCONER": 10000}  # the 10,000 are the ja/zh inputs
    assert paper.translate.items["en"].sample == {"SCPOS-AdjN": 10000, "SCPOS-Adj": 10000, "SCPOS-N": 10000}
    assert paper.split.leakage == "keep"
    assert (paper.llm.backend, paper.llm.api, paper.llm.model) == ("openai", "chat", "gpt-3.5-turbo")
    assert paper.translate.method == "one_shot"
    assert paper.split.requested("en", "TCONER") == 2000 and paper.split.requested("en", "SCPOS-RW") == 500  # Table 3
    assert (paper.train.method, paper.train.epochs, paper.train.learning_rate, paper.train.mixed_precision) == ("full", 3, 1e-5, "bf16")
    assert paper.train.base_model == params_copy.parent / "models" / "base" / "Meta-Llama-3-8B"
    assert (paper.predict.dtype, paper.predict.max_rows_per_cell) == ("float16", None)
    # the LLaMA weights are a note (the user provides them), not an error
    assert any(note.startswith("train.base_model:") for note in result.notes)
    # the profile touches no section it does not name
    before, overlay = config.read_yaml(root / "params.yaml"), config.read_yaml(root / "params" / "paper.yaml")
    after = config.read_yaml(params_copy)
    assert {name: after[name] for name in before if name not in overlay} == {n: before[n] for n in before if n not in overlay}


def test_apply_keeps_every_comment_and_changes_only_the_profiles_lines(params_copy, root):
    original = params_copy.read_text(encoding="utf-8").splitlines()
    result = profile.apply(root / "params" / "paper.yaml", params_copy)
    updated = params_copy.read_text(encoding="utf-8").splitlines()
    assert len(updated) == len(original)
    changed = [(old, new) for old, new in zip(original, updated) if old != new]
    assert len(changed) == len(result.changes)  # one line per changed leaf value
    for old, new in changed:
        assert old.split(":", 1)[0] == new.split(":", 1)[0]  # same key on the same line
        if "#" in old:
            assert old[old.index("#"):] == new[new.index("#"):]  # its comment kept
    again = profile.apply(root / "params" / "paper.yaml", params_copy)
    assert again.changes == [] and not again.written


def test_dry_run_lists_the_changes_and_writes_nothing(params_copy, root):
    before, stat = params_copy.read_bytes(), params_copy.stat()
    result = runner.invoke(app, ["profile", "apply", str(root / "params" / "paper.yaml"), "--params", str(params_copy),
                                 "--dry-run"])
    assert result.exit_code == 0, result.output
    assert 'train.method: "lora" -> "full"   # "fine-tuned using full parameters"' in result.output
    assert 'llm.model: "gemma-3-270m" -> "gpt-3.5-turbo"' in result.output
    assert "dry run, nothing written" in result.output
    assert params_copy.read_bytes() == before and params_copy.stat().st_mtime_ns == stat.st_mtime_ns
    assert not [p for p in params_copy.parent.iterdir() if p.name.endswith(".tmp")]


def test_unknown_keys_are_refused_with_a_hint_and_nothing_is_written(params_copy, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  learning_rat: 1e-5\n  method: full\nevaluation:\n  mode: paper\n", encoding="utf-8")
    before = params_copy.read_bytes()
    result = runner.invoke(app, ["profile", "apply", str(bad), "--params", str(params_copy)])
    assert result.exit_code == 1
    assert "train.learning_rat (did you mean train.learning_rate?)" in result.output
    assert "evaluation (did you mean evaluate?)" in result.output
    assert "Traceback" not in result.output
    assert params_copy.read_bytes() == before


def test_a_profile_that_the_typed_config_rejects_is_refused(params_copy, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  method: fulll\nllm:\n  backend: opneai\n", encoding="utf-8")
    before = params_copy.read_bytes()
    with pytest.raises(profile.ProfileError) as err:
        profile.apply(bad, params_copy)
    message = str(err.value)
    assert "train.method: Input should be 'lora' or 'full', got 'fulll'" in message
    assert "llm.backend: Input should be 'openai', 'local' or 'replay', got 'opneai'" in message
    assert params_copy.read_bytes() == before


def test_merge_descends_into_mappings_and_replaces_everything_else(tmp_path):
    base_file, overlay_file = tmp_path / "base.yaml", tmp_path / "overlay.yaml"
    base_file.write_text(
        "a:\n"
        "  keep: 1        # untouched\n"
        "  n: 2           # a number\n"
        "  items: []      # a list\n"
        "  sizes: 24\n"
        "  inner: {x: 1, y: 2}\n",
        encoding="utf-8",
    )
    overlay_file.write_text(
        "a:\n  n: 3   # profile note\n  items: [p, q]\n  sizes: {en: {SCNM: 5}}\n  inner: {y: 9}\n", encoding="utf-8"
    )
    base, overlay = profile.load(base_file), profile.load(overlay_file)
    changes = profile.merge(base, overlay)
    assert [(c.key, c.old, c.new, c.note) for c in changes] == [
        ("a.n", 2, 3, "profile note"),
        ("a.items", [], ["p", "q"], ""),
        ("a.sizes", 24, {"en": {"SCNM": 5}}, ""),
        ("a.inner.y", 2, 9, ""),
    ]
    text = profile.dump(base)
    assert "keep: 1        # untouched" in text and "# a number" in text and "profile note" not in text
    assert "items: [p, q]" in text and "inner: {x: 1, y: 9}" in text  # flow style kept
    assert yaml.safe_load(text) == {"a": {"keep": 1, "n": 3, "items": ["p", "q"], "sizes": {"en": {"SCNM": 5}},
                                          "inner": {"x": 1, "y": 9}}}


def test_round_trip_of_params_is_byte_identical(root):
    text = (root / "params.yaml").read_text(encoding="utf-8")
    assert profile.dump(profile.load(root / "params.yaml")) == text


def test_a_profile_that_is_not_yaml_is_a_clean_error(params_copy, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [\n", encoding="utf-8")
    result = runner.invoke(app, ["profile", "apply", str(broken), "--params", str(params_copy)])
    assert result.exit_code == 1 and f"{broken}: not valid YAML" in result.output and "Traceback" not in result.output


def test_the_paper_answer_budget_never_cuts_a_reference_answer_of_the_sample(params_copy, root, sample_dir):
    """Counted with GPT-3.5's own encoding (cl100k), every reference one-shot answer fits the paper's max_tokens."""
    from mmm.io import read_records
    from mmm.llm.tokens import Tokenizer
    from mmm.records import Sample
    from mmm.translate import template as templates

    profile.apply(root / "params" / "paper.yaml", params_copy)
    cap = config.load(params_copy).translate.max_tokens
    tokenizer = Tokenizer("cl100k_base", True, "completions")
    rows = lambda folder: {r["id"]: Sample.from_record(r) for p in sorted(folder.glob("*.jsonl")) for r in read_records(p)}  # noqa: E731
    langs = {"ja": rows(sample_dir / "ja"), "en": rows(sample_dir / "reference" / "en"), "zh": rows(sample_dir / "reference" / "zh")}
    checked = 0
    for source, target in (("ja", "en"), ("ja", "zh"), ("en", "ja"), ("en", "zh")):
        marker = templates.load(templates.template_path(root / "prompts" / "translate", source, target)).answer_output
        for key, src in langs[source].items():
            tgt = langs[target][key]
            assert tokenizer.count(f"{tgt.input}\n{marker}\n{tgt.output}") <= cap.for_sample(src, target), (key, source, target)
            checked += 1
    assert checked == 4 * 252
