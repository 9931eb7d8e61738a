"""The gate record: what ``validate`` checked and whether it passed, and the check train and predict make.

``validate`` removes the record before it starts (a crash leaves none), then writes
``{"passed": bool, "files": {path: sha256}}`` for every file it checked. Paths are relative to the
record's folder, so the record is the same in every checkout and names no machine. ``require``
refuses a file unless the record passed and lists the file with the sha256 it has now (so a file
edited after validation is refused too). This module does not import Great Expectations.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mmm.errors import MMMError
from mmm.io import write_json

VALIDATE_HINT = "run `dvc repro validate` (or `mmm validate`)"


class GateError(MMMError):
    """A stage was asked to read a file the validation gate has not passed."""


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _key(gate: Path, path: str | Path) -> str:
    """``path`` as the record names it: relative to the record's folder, with forward slashes."""
    return Path(os.path.relpath(Path(path).resolve(), gate.resolve().parent)).as_posix()


def clear(gate: str | Path) -> None:
    """Remove an old record, so a run that stops before ``write`` leaves none."""
    Path(gate).unlink(missing_ok=True)


def record(gate: str | Path, files: Iterable[str | Path]) -> dict[str, Any]:
    """The files' digests as the record stores them (computed before the checks read the files)."""
    gate = Path(gate)
    return {_key(gate, path): sha256(path) for path in sorted({Path(p) for p in files})}


def write(gate: str | Path, passed: bool, files: dict[str, str]) -> None:
    """Write the record (sorted keys, no times: the same data gives the same bytes)."""
    write_json(gate, {"passed": passed, "files": dict(sorted(files.items()))})


def require(gate: str | Path | None, path: str | Path, stage: str) -> None:
    """Raise ``GateError`` unless ``gate`` passed and lists ``path`` with its current sha256.

    ``gate`` None (``<stage>.gate: null``) turns the check off, for ad-hoc runs outside the pipeline.
    """
    if gate is None:
        return
    gate = Path(gate)
    off = f"or set {stage}.gate: null to {stage} on files outside the pipeline"
    if not gate.is_file():
        raise GateError(f"{stage}: refusing {path}: no validation gate record at {gate}; {VALIDATE_HINT} first")
    try:
        data = json.loads(gate.read_text(encoding="utf-8"))
        passed, files = data["passed"], data["files"]
        if not isinstance(passed, bool) or not isinstance(files, dict):
            raise TypeError("passed must be a bool and files a mapping")
    except (ValueError, KeyError, TypeError) as exc:
        raise GateError(f"{stage}: refusing {path}: the validation gate record {gate} is unreadable ({exc}); "
                        f"{VALIDATE_HINT}") from None
    if not passed:
        raise GateError(f"{stage}: refusing {path}: the validation gate failed ({gate}: passed false); fix the data "
                        f"the validate stage reported, then {VALIDATE_HINT}")
    recorded = files.get(_key(gate, path))
    if recorded is None:
        raise GateError(f"{stage}: refusing {path}: not validated (not among the files of {gate}); add it to "
                        f"validate.checks and {VALIDATE_HINT}, {off}")
    actual = sha256(path) if Path(path).is_file() else None
    if actual is None:
        raise GateError(f"{stage}: refusing {path}: no such file (it was validated, {gate}); {VALIDATE_HINT}")
    if actual != recorded:
        raise GateError(f"{stage}: refusing {path}: changed since validation (sha256 mismatch: {actual[:12]} now, "
                        f"{recorded[:12]} validated in {gate}); {VALIDATE_HINT} again")
