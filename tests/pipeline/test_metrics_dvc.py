"""The `evaluate` DVC stage on a temporary copy: `dvc repro`, `dvc metrics show`, `dvc metrics diff`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

STAGE_FILES = [
    "params.yaml",
    "stages/evaluate.py",
    "stages/_entry.py",
    "src/mmm/evaluation",
    "src/mmm/records.py",
    "src/mmm/registry.py",
    "src/mmm/resources/registry.yaml",
    "src/mmm/resources/paper_table1.yaml",
]


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result


def write_predictions(path: Path, sample_dir: Path, right_every: int) -> None:
    files = sorted(sample_dir.glob("ja/*.jsonl"))
    rows = [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, row in enumerate(rows):
        row["prediction"] = row["output"] if i % right_every == 0 else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_repro_metrics_show_and_diff(tmp_path, root, sample_dir):
    repo = tmp_path / "repo"
    for name in STAGE_FILES:
        source, target = root / name, repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
    # Only this stage, exactly as the project declares it (other stages need inputs this copy lacks).
    stage = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["evaluate"]
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"evaluate": stage}}), encoding="utf-8")
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    run(repo, "git", "init", "-q")
    run(repo, "dvc", "init", "-q")
    predictions = repo / "data" / "processed" / "predictions.jsonl"
    write_predictions(predictions, sample_dir, right_every=1)

    run(repo, "dvc", "repro", "evaluate", "--single-item")
    assert (repo / "reports" / "table1.md").read_text(encoding="utf-8").startswith("# Table 1")
    assert (repo / "reports" / "f1_by_subset.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (repo / "metrics" / "plots" / "f1").iterdir()) == ["ALL.json", "TL.json", "WL.json"]
    shown = json.loads(run(repo, "dvc", "metrics", "show", "--json").stdout)
    figures = shown[""]["data"]["metrics/evaluate.json"]["data"]["metrics"]["ja"]
    assert set(figures) == {"SCNM", "SCPOS-RW", "SCPOS-AdjN", "SCPOS-Adj", "SCPOS-N", "TCREE"}
    assert all(f["TL"] == f["WL"] == f["ALL"] == 100.0 for f in figures.values())

    run(repo, *git, "add", "-A")
    run(repo, *git, "commit", "-qm", "all right")
    write_predictions(predictions, sample_dir, right_every=2)
    run(repo, "dvc", "repro", "evaluate", "--single-item")
    diff = json.loads(run(repo, "dvc", "metrics", "diff", "--json").stdout)["metrics/evaluate.json"]
    assert diff["metrics.ja.SCNM.TL"]["old"] == 100.0
    assert 40.0 < diff["metrics.ja.SCNM.TL"]["new"] < 80.0
    assert diff["audits.ja.SCNM.empty_output.count"]["old"] == 0
    # Nothing changed since: a second repro is a no-op.
    assert "didn't change" in run(repo, "dvc", "repro", "evaluate", "--single-item").stdout
