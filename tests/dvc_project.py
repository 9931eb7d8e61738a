"""Helpers for tests that run real DVC commands on a temporary copy of the project."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml

COPIED = ("src", "stages", "prompts", "gx", "data/raw", "data/tconer", "data/translate", "data/glossary", "configs")


def env() -> dict[str, str]:
    """The test's environment with this interpreter's bin first, so stage commands run `python` from the venv."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(Path(sys.executable).parent / "dvc"), *args], cwd=cwd, env=env(), capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def copy_project(root: Path, dest: Path, stages: Iterable[str] | None = None) -> Path:
    """Copy code, params and inputs (not outputs, not the DVC cache); keep only ``stages`` of dvc.yaml if given."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        if (root / name).exists():
            shutil.copytree(root / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(root / "params.yaml", dest / "params.yaml")
    pipeline = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))
    if stages is not None:
        pipeline["stages"] = {k: v for k, v in pipeline["stages"].items() if k in set(stages)}
    (dest / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False, allow_unicode=True), encoding="utf-8")
    dvc(dest, "init", "--no-scm", "-q")
    dvc(dest, "config", "core.analytics", "false")
    return dest


def seed_training_inputs(project: Path, model_dir: Path, **updates: dict) -> tuple[list[dict], dict]:
    """Inputs of a split -> train -> predict copy: the tiny model as the base, a small mix (SCNM, TCREE,
    TCONER in three languages) as the released dataset, and params that train for 3 steps. The validate
    stage is not in such a copy: the gate file train and predict depend on is a placeholder and their
    gate checks are off (``gate: null``) unless ``updates`` (section -> values, on top) turn them on.
    Returns the mix and the params written."""
    from tiny_model import sample_records, sample_tconer

    shutil.copytree(model_dir, project / "models" / "base" / "tiny")
    mix = [r for r in sample_records() + sample_tconer() if r["dataset"] in ("SCNM", "TCREE", "TCONER")]
    (project / "data" / "processed").mkdir(parents=True)
    (project / "data" / "processed" / "mmm.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mix), encoding="utf-8")
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    (project / params["validate"]["gate"]).write_text('{"passed": false, "files": {}}\n')  # never read: gate: null
    params["train"].update(base_model="models/base/tiny", method="full", max_steps=3, learning_rate=1e-2, threads=1,
                           gate=None)
    params["predict"].update(gate=None)
    for section, values in updates.items():
        params[section].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return mix, params
