"""Importing the library changes no global state: logging configuration belongs to the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import importlib, json, logging, os, pathlib, warnings
import mmm  # the package itself: its documented offline switch (mmm.offline) is the baseline

def state():
    loggers = {name: (lg.level, len(lg.handlers), lg.propagate, lg.disabled)
               for name, lg in logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    return {"root": [logging.root.level, len(logging.root.handlers)], "disable": logging.root.manager.disable,
            "loggers": loggers, "env": dict(os.environ), "warnings": len(warnings.filters)}

root = pathlib.Path(mmm.__file__).parent
modules = [f"mmm.{pkg}" + ("" if p.stem == "__init__" else f".{p.stem}")
           for pkg in ("llm", "translate", "tconer") for p in sorted((root / pkg).glob("*.py"))]
for name in ("openai", "polars"):
    importlib.import_module(name)  # third-party imports (and their own settings) are the baseline too
before = state()
for name in modules:
    importlib.import_module(name)
after = state()
changed = {name: [before["loggers"][name], value] for name, value in after["loggers"].items()
           if name in before["loggers"] and before["loggers"][name] != value and not name.startswith("mmm")}
print(json.dumps({"modules": modules, "changed": changed,
                  "root": [before["root"], after["root"]], "disable": [before["disable"], after["disable"]],
                  "env": sorted(set(after["env"].items()) ^ set(before["env"].items())),
                  "warnings": [before["warnings"], after["warnings"]]}))
"""


def test_importing_llm_translate_and_tconer_leaves_logging_and_environment_alone():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=300)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert "mmm.llm.runner" in seen["modules"] and "mmm.tconer.label" in seen["modules"]
    assert seen["changed"] == {}
    assert seen["root"][0] == seen["root"][1] and seen["disable"][0] == seen["disable"][1]
    assert seen["env"] == [] and seen["warnings"][0] == seen["warnings"][1]
