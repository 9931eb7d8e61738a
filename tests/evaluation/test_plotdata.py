"""The F1 plot data: the metrics' own numbers, one row per (lang, dataset, level), one file per level."""

from __future__ import annotations

import json

from mmm.evaluation.plotdata import f1_rows, write_f1

RESULT = {
    "metrics": {
        "en": {"SCNM": {"n": 3, "TL": 66.6667, "WL": 12.5, "ALL": 0.0,
                        "ci": {"TL": {"low": 0.0, "high": 100.0}, "WL": {"low": 0.0, "high": 40.0},
                               "ALL": {"low": 0.0, "high": 0.0}}}},
        "zh": {"TCONER": {"n": 2, "TL": 50.0, "WL": 25.0, "ALL": 0.0,
                          "ci": {"TL": {"low": 0.0, "high": 100.0}, "WL": {"low": 10.0, "high": 30.0},
                                 "ALL": {"low": 0.0, "high": 0.0}}}},
    }
}


def row(cell: str, level: str, n: int, f1: float, low: float | None, high: float | None) -> dict:
    lang, dataset = cell.split("/")
    return {"cell": cell, "lang": lang, "dataset": dataset, "level": level, "n": n, "f1": f1, "ci_low": low,
            "ci_high": high}


def test_one_row_per_lang_dataset_and_level_in_the_metrics_order():
    assert f1_rows(RESULT) == [
        row("en/SCNM", "TL", 3, 66.6667, 0.0, 100.0),
        row("en/SCNM", "WL", 3, 12.5, 0.0, 40.0),
        row("en/SCNM", "ALL", 3, 0.0, 0.0, 0.0),
        row("zh/TCONER", "TL", 2, 50.0, 0.0, 100.0),
        row("zh/TCONER", "WL", 2, 25.0, 10.0, 30.0),
        row("zh/TCONER", "ALL", 2, 0.0, 0.0, 0.0),
    ]


def test_without_the_bootstrap_the_interval_is_null_and_a_text_only_model_has_tl_only():
    result = {"metrics": {"ja": {"TCREE": {"n": 4, "TL": 75.0}}}}  # target text_only, bootstrap_samples: 0
    assert f1_rows(result) == [row("ja/TCREE", "TL", 4, 75.0, None, None)]


def test_one_file_per_level_each_a_json_list_with_a_row_per_line(tmp_path):
    written = write_f1(tmp_path, RESULT)
    assert [p.name for p in written] == ["TL.json", "WL.json", "ALL.json"]
    text = (tmp_path / "WL.json").read_text(encoding="utf-8")
    assert json.loads(text) == [row("en/SCNM", "WL", 3, 12.5, 0.0, 40.0), row("zh/TCONER", "WL", 2, 25.0, 10.0, 30.0)]
    assert text.splitlines()[0] == "[" and text.splitlines()[1].startswith('{"cell": "en/SCNM"') and text.endswith("}\n]\n")
