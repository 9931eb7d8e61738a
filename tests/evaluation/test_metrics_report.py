"""`mmm evaluate` end to end on the embedded sample: metrics JSON, Table 1 Markdown, PNG chart."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from configs import write_params
from mmm.cli import app
from mmm.evaluation.report import markdown, paper_table

runner = CliRunner()


def sample_predictions(sample_dir, path, target: str | None = None) -> list[dict]:
    """Predictions over the sample's records: right for even rows, label only (no marker) for odd ones."""
    files = sorted(sample_dir.glob("ja/*.jsonl")) + sorted(sample_dir.glob("reference/*/*.jsonl"))
    rows = [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, row in enumerate(rows):
        row["prediction"] = row["output"] if i % 2 == 0 else row["output"].split("/")[0]
        if target:
            row["target"] = target
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return rows


def evaluate_params(tmp_path, **evaluate) -> str:
    """A params file whose evaluate outputs are under ``tmp_path``, with ``evaluate`` overrides."""
    outputs = {"out": str(tmp_path / "m.json"), "report": str(tmp_path / "t.md"), "plot": str(tmp_path / "t.png"),
               "plot_data": str(tmp_path / "f1")}
    return str(write_params(tmp_path / "params.yaml", evaluate={**outputs, **evaluate}))


def test_cli_writes_metrics_report_chart_and_plot_data(tmp_path, sample_dir):
    rows = sample_predictions(sample_dir, tmp_path / "p.jsonl")
    out, report, plot = tmp_path / "m.json", tmp_path / "r" / "table1.md", tmp_path / "r" / "f1.png"
    plot_data = tmp_path / "r" / "f1"
    params = evaluate_params(tmp_path, bootstrap_samples=200, model_name="tiny")
    result = runner.invoke(app, ["evaluate", str(tmp_path / "p.jsonl"), "--out", str(out), "--report", str(report),
                                 "--plot", str(plot), "--plot-data", str(plot_data), "--params", params])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"evaluate: {len(rows)} rows in 18 sub-dataset(s), paper mode, target joint;")
    metrics = json.loads(out.read_text(encoding="utf-8"))
    assert metrics["rows"] == len(rows) and metrics["predictions"] == "p.jsonl"
    assert set(metrics["metrics"]) == {"en", "ja", "zh"}
    ja_scnm = metrics["metrics"]["ja"]["SCNM"]
    half = sum(1 for i, r in enumerate(rows) if i % 2 == 0 and r["lang"] == "ja" and r["dataset"] == "SCNM")
    # Even rows right, odd rows generate nothing: precision 100, recall = share of even rows.
    assert ja_scnm["precision"]["TL"] == 100.0
    assert ja_scnm["recall"]["TL"] == pytest.approx(100 * half / ja_scnm["n"], abs=1e-3)
    assert ja_scnm["ci"]["TL"]["low"] <= ja_scnm["TL"] <= ja_scnm["ci"]["TL"]["high"]
    assert metrics["audits"]["ja"]["SCNM"]["missing_marker"]["count"] == ja_scnm["n"] - half
    text = report.read_text(encoding="utf-8")
    assert text.startswith("# Table 1: F1 on the MMM test sets (paper mode, target joint)")
    assert f"| **tiny** | {ja_scnm['TL']:.2f} | {ja_scnm['WL']:.2f} | {ja_scnm['ALL']:.2f} |" in text
    assert "| OIELLM-8B (paper) | 84.73 | 88.53 | 61.93 |" in text  # the paper's Japanese SCNM row
    assert "## TCONER" not in text  # no TCONER rows in this file
    assert text.index("## Japanese (ja)") < text.index("## English (en)") < text.index("## Chinese (zh)")  # the paper's order
    png = plot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert sorted(p.name for p in plot_data.iterdir()) == ["ALL.json", "TL.json", "WL.json"]
    tl = json.loads((plot_data / "TL.json").read_text(encoding="utf-8"))
    assert len(tl) == 18 and tl[0]["cell"] == "en/SCNM"  # the result's order: en first, as in metrics
    assert next(r for r in tl if r["cell"] == "ja/SCNM") == {
        "cell": "ja/SCNM", "lang": "ja", "dataset": "SCNM", "level": "TL", "n": ja_scnm["n"], "f1": ja_scnm["TL"],
        "ci_low": ja_scnm["ci"]["TL"]["low"], "ci_high": ja_scnm["ci"]["TL"]["high"]}


def test_bad_input_exits_1_with_the_line_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "lang": "en", "dataset": "SCNM", "input": "x/NER", "output": "L/NER/"}\n', encoding="utf-8")
    result = runner.invoke(app, ["evaluate", str(bad), "--params", evaluate_params(tmp_path)])
    assert result.exit_code == 1
    assert f"{bad}:1: missing field 'prediction'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "m.json").exists()


def test_bad_options_are_clean_errors(tmp_path, sample_dir):
    sample_predictions(sample_dir, tmp_path / "p.jsonl", target="joint")
    evaluate = ["evaluate", str(tmp_path / "p.jsonl"), "--params", evaluate_params(tmp_path)]
    result = runner.invoke(app, [*evaluate, "--mode", "fuzzy"])
    assert result.exit_code == 2 and "Invalid value for '--mode'" in result.output, result.output
    result = runner.invoke(app, [*evaluate, "--target", "word_only"])
    message = "target word_only was requested but the predictions come from a joint model"
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output, result.output


def test_text_only_model_is_scored_on_tl_only(tmp_path, sample_dir):
    rows = sample_predictions(sample_dir, tmp_path / "p.jsonl", target="text_only")
    for row in rows:  # what a text_only model prints: "label/WORD/"
        row["prediction"] = row["output"][: row["output"].index("/", row["output"].index("/") + 1) + 1]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = runner.invoke(app, ["evaluate", str(tmp_path / "p.jsonl"), "--params", evaluate_params(tmp_path, bootstrap_samples=0,
                                                                                                    model_name="this run")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["target"] == "text_only"
    figures = metrics["metrics"]["en"]["SCPOS-N"]
    assert figures["TL"] == 100.0 and "WL" not in figures and "ALL" not in figures
    assert "| **this run** | 100.00 | – | – |" in (tmp_path / "t.md").read_text()


def test_markdown_has_tconer_table_in_paper_language_order():
    result = {
        "mode": "paper", "target": "joint", "rows": 2, "predictions": "p.jsonl",
        "metrics": {"ja": {"TCONER": {"n": 1, "TL": 50.0, "WL": 25.0, "ALL": 0.0}},
                    "en": {"TCONER": {"n": 1, "TL": 10.0, "WL": 20.0, "ALL": 30.0}}},
        "audits": {}, "bootstrap": {"samples": 0, "seed": 0, "confidence": 0.95},
    }
    text = markdown(result, "this run")
    assert "| Model | English TL | English WL | English ALL | Japanese TL |" in text
    assert "| **this run** | 10.00 | 20.00 | 30.00 | 50.00 | 25.00 | 0.00 | – | – | – |" in text
    assert "| OIELLM-13B (paper) | 40.30 | 19.23 | 0.30 | 43.40 | 13.02 | 0.00 | 47.70 | 15.72 | 0.30 |" in text
    assert "## Japanese (ja)" not in text and "## English (en)" not in text  # TCONER only: no MRE tables


def test_paper_table_has_every_cell_of_table_1():
    f1 = paper_table()["f1"]
    reported = [v for lang in f1.values() for dataset in lang.values() for v in dataset.values() if v is not None]
    assert len(reported) == 73  # 75 cells; "-" for USA-7B on Japanese SCNM and TCREE
    assert all(len(v) == 3 for v in reported)
