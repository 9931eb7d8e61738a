"""Importing the model code changes no process state: a library import must not configure its host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_MODULES = ["mmm.modeling.batching", "mmm.modeling.card", "mmm.modeling.determinism", "mmm.modeling.generation",
                 "mmm.modeling.loading", "mmm.modeling.loss", "mmm.modeling.sequence", "mmm.modeling.world",
                 "mmm.train", "mmm.predict"]

# Runs in a fresh interpreter: the package itself (``import mmm`` forces the offline variables)
# and torch are imported first, then the state is compared around importing ``modules``.
PROBE = """
import importlib, json, logging, os, sys, warnings
import mmm, torch

def state():
    loggers = {name: [logger.level, len(logger.handlers), logger.propagate]
               for name, logger in sorted(logging.root.manager.loggerDict.items()) if isinstance(logger, logging.Logger)}
    return {"environ": dict(os.environ), "root": [logging.root.level, len(logging.root.handlers)],
            "loggers": {k: v for k, v in loggers.items() if v != [0, 0, True]}, "threads": torch.get_num_threads(),
            "deterministic": torch.are_deterministic_algorithms_enabled(), "warnings": len(warnings.filters),
            "dtype": str(torch.get_default_dtype())}

before = state()
for name in sys.argv[1:]:
    importlib.import_module(name)
after = state()
print(json.dumps({key: [before[key], after[key]] for key in before if before[key] != after[key]}))
"""


def changed_by_import(modules: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", PROBE, *modules], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_model_modules_changes_no_global_state():
    assert changed_by_import(MODEL_MODULES) == {}


def test_importing_the_local_backend_changes_no_global_state():
    assert changed_by_import(["mmm.llm.local"]) == {}
