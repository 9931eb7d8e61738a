"""dvc.yaml's top-level plots with real DVC: `dvc plots show` on small plot files, `dvc plots diff` from git.

No stage runs: a git copy holds the project's dvc.yaml and params.yaml and small files written by the
project's own writers where the stages would write them (placeholder PNGs for the image plots).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from dvc_project import dvc, env

from mmm import config
from mmm.evaluation.plotdata import write_f1
from mmm.io import write_table

pytestmark = pytest.mark.slow  # a few `dvc` subprocesses

RESULT = {"metrics": {lang: {dataset: {"n": 3, "TL": 60.0, "WL": 40.0, "ALL": 20.0} for dataset in ("SCNM", "TCONER")}
                      for lang in ("en", "ja")}}
FUNNEL = [{"lang": "en", "stage": stage, "order": i, "label": f"en {i} {stage}", "rows": rows}
          for i, (stage, rows) in enumerate((("ingested", 12), ("labelled", 11), ("translated", 10), ("filtered", 9),
                                             ("released", 9), ("train", 5), ("test", 4)), start=1)]
CURVE = "step,epoch,loss,learning_rate,tokens\n1,0.1,4.5,0.0002,300\n2,0.2,3.9,0.0001,610\n3,0.3,3.1,0.0,900\n"


def git(cwd: Path, *args: str) -> None:
    result = subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args], cwd=cwd, check=False,
                            env=env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def project(tmp_path, root) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(root / name, project / name)
    git(project, "init", "-q")
    dvc(project, "init", "-q")
    dvc(project, "config", "core.analytics", "false")
    params = config.load(project / "params.yaml")
    params.evaluate.plot_data.mkdir(parents=True)
    write_f1(params.evaluate.plot_data, RESULT)
    write_table(params.funnel.out, FUNNEL)
    params.train.curve.write_text(CURVE, encoding="utf-8")
    for png in (params.evaluate.plot, params.train.plot):
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(b"\x89PNG\r\n\x1a\n")
    return project


def vega(shown: dict) -> dict[str, dict]:
    """Plot id -> its one Vega-Lite spec (image plots left out)."""
    return {name: plots[0]["content"] for name, plots in shown["data"].items() if plots and plots[0]["type"] == "vega"}


def test_plots_show_draws_every_plot_with_a_built_in_template(project, tmp_path):
    shown = json.loads(dvc(project, "plots", "show", "--json").stdout)
    assert "errors" not in shown, shown["errors"]
    images = {name for name, plots in shown["data"].items() if plots and plots[0]["type"] == "image"}
    assert images == {"reports/f1_by_subset.png", "reports/train_loss.png"}
    specs = vega(shown)
    assert set(specs) == {"metrics/plots/f1/TL.json", "metrics/plots/f1/WL.json", "metrics/plots/f1/ALL.json",
                          "retention", "train_loss"}
    tl = specs["metrics/plots/f1/TL.json"]
    assert tl["mark"] == {"type": "bar"} and tl["encoding"]["x"]["field"] == "f1" and tl["encoding"]["y"]["field"] == "cell"
    assert [(v["cell"], v["f1"]) for v in tl["data"]["values"]] == [
        ("en/SCNM", 60.0), ("en/TCONER", 60.0), ("ja/SCNM", 60.0), ("ja/TCONER", 60.0)]
    retention = specs["retention"]
    assert retention["encoding"]["y"]["field"] == "label" and retention["encoding"]["x"]["field"] == "rows"
    assert [v["rows"] for v in retention["data"]["values"]] == [row["rows"] for row in FUNNEL]
    loss = specs["train_loss"]
    assert loss["title"]["text"] == "OIELLM training loss (answer tokens)"
    assert [v["loss"] for v in loss["data"]["values"]] == ["4.5", "3.9", "3.1"]  # CSV: DVC passes strings on

    html = tmp_path / "html"
    dvc(project, "plots", "show", "--out", str(html))
    page = (html / "index.html").read_text(encoding="utf-8")
    assert '<script src="https://' in page and "vega-embed" in page  # Vega from a CDN: the PNGs are the offline view


def test_plots_diff_overlays_two_committed_revisions_read_from_git(project):
    git(project, "add", "-A")
    git(project, "commit", "-qm", "baseline")
    git(project, "branch", "-M", "main")
    git(project, "checkout", "-qb", "exp")
    params = config.load(project / "params.yaml")
    better = {"metrics": {lang: {dataset: {**figures, "TL": 90.0} for dataset, figures in by_dataset.items()}
                          for lang, by_dataset in RESULT["metrics"].items()}}
    shutil.rmtree(params.evaluate.plot_data)
    params.evaluate.plot_data.mkdir()
    write_f1(params.evaluate.plot_data, better)
    git(project, "commit", "-qam", "an experiment")
    git(project, "checkout", "-q", "main")
    shown = json.loads(dvc(project, "plots", "diff", "main", "exp", "--json").stdout)
    assert "errors" not in shown, shown["errors"]
    tl = vega(shown)["metrics/plots/f1/TL.json"]
    values = {(v["rev"], v["cell"]): v["f1"] for v in tl["data"]["values"]}
    assert values[("main", "en/SCNM")] == 60.0 and values[("exp", "en/SCNM")] == 90.0 and len(values) == 8
    assert sorted(tl["encoding"]["color"]["scale"]["domain"]) == ["exp", "main"]  # one colour per revision
    assert tl["encoding"]["yOffset"]["field"] == "rev"  # side by side in each cell's band
