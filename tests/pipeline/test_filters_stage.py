"""The `filter@…` and `validate` DVC stages, run by real `dvc repro` on a temporary copy of the project."""

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

MY_STAGES = ("filter", "validate")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def project(tmp_path_factory, root) -> Path:
    """A copy of the project with only this stage group in dvc.yaml (taken verbatim from the repo's)."""
    work = tmp_path_factory.mktemp("project")
    for name in ("stages", "gx", "src"):
        shutil.copytree(root / name, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(root / "params.yaml", work / "params.yaml")
    stages = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    (work / "dvc.yaml").write_text(yaml.safe_dump({"stages": {k: stages[k] for k in MY_STAGES}}, sort_keys=False))
    dvc(work, "init", "--no-scm", "-q")
    return work


def dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([str(Path(sys.executable).parent / "dvc"), *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def tconer(lang: str, n: int, text: str, entity: str) -> dict:
    label = {"ja": "音楽", "zh": "音乐"}[lang]
    return {"id": f"tconer-{n}", "lang": lang, "dataset": "TCONER", "input": f"{text}/NER", "output": f"{label}/NER/:band;{entity}"}


def test_filter_and_validate_stages_run_and_report_metrics(project, sample_dir):
    inputs = project / "data" / "interim"
    for lang in ("en", "zh"):
        rows = [r for p in sorted(sample_dir.glob(f"reference/{lang}/*.jsonl")) for r in read_jsonl(p)]
        rows[0] = {**rows[0], "input": "ア" + rows[0]["input"]}  # residual Japanese
        rows[1] = {**rows[1], "output": rows[1]["output"] + ":x;not in the text"}
        write_jsonl(inputs / "translate" / f"{lang}.jsonl", rows)
    write_jsonl(
        inputs / "tconer" / "translate" / "ja.jsonl",
        [tconer("ja", 1, "クイーンは英国のバンドだ。", "クイーン"), tconer("ja", 2, "ビートルズ。", "ザ・ビートルズ")],
    )
    write_jsonl(
        inputs / "tconer" / "translate" / "zh.jsonl",
        [tconer("zh", 1, "皇后乐队是英国乐队。", "皇后乐队"), tconer("zh", 2, "クイーン乐队。", "クイーン乐队")],
    )
    dvc(project, "repro", "-s", "filter@en", "filter@zh", "filter@tconer_ja", "filter@tconer_zh")

    metrics = json.loads(dvc(project, "metrics", "show", "--json").stdout)
    shown = next(iter(metrics.values()))["data"]
    en = shown["metrics/filter_en.json"]["data"]
    assert (en["input"], en["kept"], en["rejected"]) == (252, 250, 2)
    assert en["reasons"] == {"residual_japanese": 1, "entity_not_in_text": 1, "bad_format": 0}
    assert en["datasets"]["SCNM"]["input"] == 42
    ja = shown["metrics/filter_tconer_ja.json"]["data"]
    assert (ja["kept"], ja["reasons"]["residual_japanese"], ja["reasons"]["entity_not_in_text"]) == (1, 0, 1)
    assert shown["metrics/filter_tconer_zh.json"]["data"]["reasons"]["residual_japanese"] == 1
    filtered = project / "data" / "interim" / "filter"
    assert len(read_jsonl(filtered / "zh.jsonl")) + len(read_jsonl(filtered / "zh.rejected.jsonl")) == 252
    assert "filter@en" not in dvc(project, "status").stdout  # recorded in dvc.lock, up to date

    released = [r for p in sorted(sample_dir.glob("ja/*.jsonl")) for r in read_jsonl(p)]
    released += read_jsonl(filtered / "en.jsonl") + read_jsonl(filtered / "zh.jsonl")
    processed = project / "data" / "processed"
    write_jsonl(processed / "mmm.jsonl", released)
    texts = sorted({r["input"].rsplit("/", 1)[0] for r in released})
    test_texts = set(texts[::5])
    train = [r for r in released if r["input"].rsplit("/", 1)[0] not in test_texts]
    write_jsonl(processed / "split" / "train.jsonl", train)
    dev_texts = set(sorted({r["input"].rsplit("/", 1)[0] for r in train})[::7])
    write_jsonl(processed / "split" / "fit.jsonl", [r for r in train if r["input"].rsplit("/", 1)[0] not in dev_texts])
    write_jsonl(processed / "split" / "dev.jsonl", [r for r in train if r["input"].rsplit("/", 1)[0] in dev_texts])
    write_jsonl(processed / "split" / "test.jsonl", [r for r in released if r["input"].rsplit("/", 1)[0] in test_texts])
    dvc(project, "repro", "-s", "validate")
    shown = next(iter(json.loads(dvc(project, "metrics", "show", "--json").stdout).values()))["data"]
    assert shown["metrics/validate.json"]["data"]["failed"] == 0
    assert (project / "reports" / "validation_docs" / "index.html").exists()  # not a DVC output: it holds run times

    victim = next(r for r in released if "/NER/:" in r["output"])
    bad = dict(victim, id="bad-1", output=victim["output"].replace("/NER/:", "/NER/", 1))
    write_jsonl(processed / "mmm.jsonl", released + [bad])
    failed = dvc(project, "repro", "-s", "validate", check=False)
    said = failed.stdout + failed.stderr
    assert failed.returncode != 0, said
    assert "rule format" in said and "bad-1 (mmm:" in said, said
    assert json.loads((project / "reports" / "validation" / "results.json").read_text())["success"] is False
