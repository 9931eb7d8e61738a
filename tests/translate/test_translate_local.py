"""The local (transformers) backend on a tiny random model: garbage answers, but every row accounted for."""

from __future__ import annotations

import json

import pytest
from tiny_model import tiny_model_dir  # noqa: F401  (fixture)
from translate_fakes import mapped_rows, read_jsonl, write_jsonl

from configs import make, replace, settings
from mmm.llm import ReplayMissError
from mmm.translate.run import translate_file

SETTINGS = settings({"max_tokens": {"per_source_char": 0.1, "min": 8, "max": 16, "step": 8}}, method="one_shot")


def test_every_row_ends_in_out_or_failed_and_a_replay_needs_no_model(tmp_path, sample_dir, tiny_model_dir):  # noqa: F811
    rows = mapped_rows(sample_dir, "zh", per_dataset=1)
    source = write_jsonl(tmp_path / "zh.jsonl", rows)
    out, failed, metrics_path = tmp_path / "out.jsonl", tmp_path / "failed.jsonl", tmp_path / "m.json"
    config = make("llm", backend="local", model="tiny", local_model_dir=str(tiny_model_dir),
                       cache_dir=str(tmp_path / "cache"), local_batch_size=4, progress=False)
    metrics = translate_file(source, "zh", out, failed, SETTINGS, config, metrics_path, log_dir=tmp_path / "logs")
    llm = json.loads((tmp_path / "logs" / "m.json").read_text(encoding="utf-8"))["llm"]  # named after the metrics file

    kept, lost = read_jsonl(out), read_jsonl(failed)
    assert sorted([r["id"] for r in kept] + [r["id"] for r in lost]) == sorted(r["id"] for r in rows)
    assert all(r["reasons"] for r in lost) and metrics["translated"] + metrics["failed"] == len(rows) == 6
    assert sum(metrics["failures"].values()) >= metrics["failed"]
    assert set(metrics["failures"]) <= {"unparseable", "truncated", "empty_text", "untranslated", "label_changed",
                                        "pair_count_changed", "instruction_changed", "llm_empty"}
    assert llm["translate"]["sent"] == 6 and llm["translate"]["completion_tokens"] > 0 and "llm" not in metrics

    replayed = translate_file(source, "zh", out, failed, SETTINGS,
                              replace(config, backend="replay", local_model_dir=str(tmp_path / "no-model")), metrics_path,
                              log_dir=tmp_path / "logs")
    llm = json.loads((tmp_path / "logs" / "m.json").read_text(encoding="utf-8"))["llm"]
    assert llm["translate"]["cache_hits"] == 6 and replayed == metrics  # the same results, byte for byte
    assert read_jsonl(failed) == lost

    other = replace(SETTINGS, max_tokens=replace(SETTINGS.max_tokens, maximum=24, minimum=24))  # new prompts' params
    with pytest.raises(ReplayMissError, match="6 of 6 prompts are not in the cache"):
        translate_file(source, "zh", out, failed, other, replace(config, backend="replay"), metrics_path)
    assert read_jsonl(failed) == lost  # a refused run writes nothing
