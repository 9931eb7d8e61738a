"""Shared by the stage files: run one `mmm` subcommand with the project's interpreter, or say how to get it.

DVC runs a stage's `cmd` with whatever `python` is first on PATH. Without the project's virtual
environment that interpreter cannot import `mmm`; a one-line hint beats a traceback.
"""

import sys


def run(*args: str) -> None:
    """``mmm ARGS`` with params.yaml in the working directory (the repository root, as DVC runs stages)."""
    try:
        from mmm.cli import run as run_cli
    except ModuleNotFoundError:
        sys.exit(f"error: {sys.executable} cannot import the mmm package: enter the project's environment first "
                 "(`source .venv/bin/activate` after `make install`), or run `make repro`")
    run_cli(list(args))


def item() -> str:
    """The foreach item a DVC stage was started for (``python stages/NAME.py ITEM``)."""
    if len(sys.argv) != 2:
        sys.exit(f"usage: python {sys.argv[0]} ITEM   (ITEM: a key of the stage's items in params.yaml)")
    return sys.argv[1]
