"""The `label_map` and `translate@…` DVC stages, run by real `dvc repro` on a temporary copy against the fake server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from translate_fakes import (
    ReferenceTranslator,
    read_jsonl,
    references,
    sources,
    task_lines,
    write_jsonl,
)

pytestmark = pytest.mark.slow

MY_STAGES = ("label_map", "translate")


def dvc(cwd: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([str(Path(sys.executable).parent / "dvc"), *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def project(tmp_path, root, sample_dir, fake_openai) -> Path:
    """A copy with only these stages, their inputs written from the sample, and the llm pointed at the fake server."""
    work = tmp_path / "project"
    for name in ("stages", "src", "prompts", "data/glossary", "data/translate"):
        shutil.copytree(root / name, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    stages = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    (work / "dvc.yaml").write_text(yaml.safe_dump({"stages": {k: stages[k] for k in MY_STAGES}}, sort_keys=False))
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    params["translate"]["method"] = "one_shot"  # the fake translator answers one-shot prompts (anchored: test_translate_anchored)
    params["llm"].update(backend="openai", model="fake-model", api="completions", base_url=fake_openai.base_url,
                         max_retries=1, backoff_base_s=0.01, progress=False)
    (work / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8")
    ingest = work / "data" / "interim" / "ingest"
    write_jsonl(ingest / "sources.jsonl", sources(sample_dir))
    write_jsonl(ingest / "references.jsonl", references(sample_dir, "en") + references(sample_dir, "zh"))
    write_jsonl(work / "data" / "interim" / "tconer" / "en.jsonl", [
        {"id": "tconer-1", "lang": "en", "dataset": "TCONER", "input": "Bach lived in Leipzig./NER",
         "output": "music/NER/:composer;Bach:city;Leipzig"},
    ])
    (work / "models" / "base" / "gemma-3-270m").mkdir(parents=True)  # a dependency only; the fake server answers
    (work / "models" / "base" / "gemma-3-270m" / "config.json").write_text("{}")
    dvc(work, "init", "--no-scm", "-q")
    return work


def test_label_map_and_translate_stages_report_metrics_and_keep_the_key_out(project, fake_openai, openai_env, sample_dir):
    english = ReferenceTranslator(sources(sample_dir), references(sample_dir, "en"), "ja-en")
    tconer = "バッハはライプツィヒに住んだ。/NER\nJapanese output:\n音楽/NER/:作曲家;バッハ:都市;ライプツィヒ"
    fake_openai.answer = lambda prompt: tconer if task_lines(prompt)[0] == "Bach lived in Leipzig./NER" else english(prompt)
    dvc(project, "repro", "-s", "label_map", "translate@en", "translate@tconer_ja")

    shown = json.loads(dvc(project, "metrics", "show", "--json"))
    data = next(iter(shown.values()))["data"]
    en = data["metrics/translate_en.json"]["data"]
    assert (en["input_rows"], en["translated"], en["failed"]) == (252, 252, 0)
    assert en["quality"]["all"]["chrf"] == 100.0 and "llm" not in en and en["pending"] == 0
    assert data["metrics/label_map.json"]["data"]["langs"]["zh"]["rows"] == 252
    ja = data["metrics/translate_tconer_ja.json"]["data"]
    assert (ja["direction"], ja["translated"]) == ("en-ja", 1) and "quality" not in ja
    assert read_jsonl(project / "data" / "interim" / "tconer" / "translate" / "ja.jsonl")[0]["lang"] == "ja"
    assert len(read_jsonl(project / "data" / "interim" / "translate" / "en.jsonl")) == 252

    calls = fake_openai.completion_calls
    assert "didn't change" in dvc(project, "repro", "-s", "translate@en")
    prompt = project / "prompts" / "translate" / "ja-en.txt"
    prompt.write_text(prompt.read_text(encoding="utf-8").replace("Rules:", "Rules (all of them):"), encoding="utf-8")
    dvc(project, "repro", "-s", "translate@en")  # a new prompt: new cache keys, every row asked again
    assert fake_openai.completion_calls - calls == 252

    for path in [project / "dvc.lock", project / "params.yaml", *(project / "metrics").glob("*.json"),
                 *(project / "data").rglob("*.jsonl")]:
        assert openai_env not in path.read_text(encoding="utf-8"), path


def test_a_budget_stop_exits_75_and_dvc_locks_nothing_until_the_rerun_finishes(project, fake_openai, openai_env, sample_dir):
    fake_openai.answer = ReferenceTranslator(sources(sample_dir), references(sample_dir, "en"), "ja-en")
    params_file = project / "params.yaml"
    params = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    params["llm"]["max_requests"] = 5
    params_file.write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    stopped = subprocess.run([str(Path(sys.executable).parent / "dvc"), "repro", "translate@en"], cwd=project, env=env,
                             capture_output=True, text=True)
    assert stopped.returncode != 0 and "incomplete: " in stopped.stderr + stopped.stdout
    assert "exited with 75" in stopped.stderr + stopped.stdout
    lock = yaml.safe_load((project / "dvc.lock").read_text(encoding="utf-8"))
    assert "translate@en" not in lock["stages"] and "label_map" in lock["stages"]  # the partial output is not locked
    assert fake_openai.completion_calls == 5

    params["llm"]["max_requests"] = None
    params_file.write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8")
    dvc(project, "repro", "translate@en")
    assert fake_openai.completion_calls == 252  # the rerun sent only the 247 unanswered prompts
    assert len(read_jsonl(project / "data" / "interim" / "translate" / "en.jsonl")) == 252
