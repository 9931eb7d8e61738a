"""A stage that tracks modeling code (a dep under ``src/mmm/modeling``) depends on every modeling module its own
modules import (at any depth, inside functions too), so a change to one reruns it. Stages that reach modeling only
through the LLM backend's imports (answers cached by prompt and model) do not track it. A stage's own modules are its deps under ``src/mmm`` that are files (its
script goes through the CLI, which reaches every command). Read from the source with ``ast``, nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHECKED = "src/mmm/modeling/"


def module_file(name: str) -> Path | None:
    base = ROOT / "src" / Path(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported(path: Path) -> set[str]:
    """``mmm`` modules imported by one file (``from mmm.x import y`` counts ``mmm.x`` and ``mmm.x.y`` if a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mmm")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mmm"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}")}
    return found


def closure(*starts: Path) -> set[str]:
    """Repository-relative files of every ``mmm`` module the ``starts`` reach."""
    seen: set[Path] = set()
    todo = list(starts)
    while todo:
        path = todo.pop()
        for name in imported(path):
            target = module_file(name)
            if target is not None and target not in seen:
                seen.add(target)
                todo.append(target)
    return {p.relative_to(ROOT).as_posix() for p in seen}


def covered(file: str, deps: list[str]) -> bool:
    return any(file == dep or file.startswith(dep.rstrip("/") + "/") for dep in deps)


def test_closure_follows_imports_inside_functions():
    reached = closure(ROOT / "src" / "mmm" / "train.py")
    assert "src/mmm/modeling/loss.py" in reached  # imported inside a function of mmm.train
    assert "src/mmm/modeling/constrained.py" not in reached


def test_stages_that_track_modeling_code_depend_on_every_module_they_import():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    missing = {}
    for name, stage in stages.items():
        stage = stage.get("do", stage)  # foreach stages
        deps = [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]
        if not any(d.startswith(CHECKED.rstrip("/")) for d in deps):
            continue
        own = [ROOT / d for d in deps if d.startswith("src/mmm/") and d.endswith(".py")]
        lost = sorted(f for f in closure(*own) if f.startswith(CHECKED) and not f.endswith("__init__.py")
                      and not covered(f, deps))
        if lost:
            missing[name] = lost
    assert "train" in stages and "predict" in stages
    assert not missing, f"stage deps miss modules their code imports: {missing}"
