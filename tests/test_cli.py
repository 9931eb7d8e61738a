from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from mmm.cli import app

runner = CliRunner()


def test_help_lists_the_subcommands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("ingest", "check"):
        assert command in result.output


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "mmm.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "ingest" in result.stdout


def test_ingest_on_the_sample(tmp_path, root):
    params = tmp_path / "params.yaml"
    params.write_text(f"ingest:\n  source: sample\n  sample_dir: {root / 'data/raw/sample'}\n", encoding="utf-8")
    result = runner.invoke(
        app, ["ingest", "--params", str(params), "--out-dir", str(tmp_path / "out"), "--metrics", str(tmp_path / "m.json")]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["sources"]["ja"]["total"] == sum(1 for _ in open(tmp_path / "out" / "sources.jsonl"))
    assert set(metrics["references"]) == {"en", "zh"}


def test_check_reports_bad_rows_without_traceback(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "lang": "en", "dataset": "SCNM", "input": "x/NER", "output": "Society/NER"}\n')
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:1:" in result.output and "marker" in result.output
    assert "Traceback" not in result.output
