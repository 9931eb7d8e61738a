"""Training checkpoints: a killed run continues where its last checkpoint left it.

Layout of ``train.checkpoints`` (a folder outside the stage's DVC outs, so ``dvc repro`` keeps it)::

    step-00000010-3f2a9c01b7de/   accelerate's save_state (model, optimizer, scheduler, RNG of every
                                  rank) + checkpoint.json (step, data position, counters, curve, fingerprint)
    step-00000020-3f2a9c01b7de/   the suffix: the first 12 hex digits of the fingerprint's sha256
    .step-00000030-3f2a9c01b7de.tmp/   a checkpoint being written (removed by the next run)

* A checkpoint is written into a hidden temporary folder; ``checkpoint.json`` is written last,
  every file is fsynced, then the folder is renamed to ``step-NNNNNNNN-FINGERPRINT``. A kill at any
  moment leaves either the complete new folder or none, never a half-written ``step-*``; the newest
  ``KEEP`` (2) complete checkpoints of the run are kept.
* The *fingerprint* is everything that decides the trajectory: the training params (not file
  locations, not the checkpoint settings), the world size and engine, the sha256 of the train
  file and of every file of the base model. ``resume: auto`` takes the newest checkpoint with
  the same fingerprint and names every other one it skips and why; ``resume: never`` removes the
  run's own earlier checkpoints and starts over.
* The data position is the number of batches each rank consumed: the batch order is fixed up
  front from the seed (``mmm.modeling.batching``), so skipping that many batches is exact.
* After the model is published, the run's checkpoints are removed; checkpoints of other
  fingerprints are left alone (logged at the start of every run that could resume).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmm.config import RESUME_KEYS, TrainConfig

log = logging.getLogger(__name__)

KEEP = 2  # complete checkpoints kept per run: the newest stays usable while the next one is written
STATE_FILE = "checkpoint.json"
FORMAT = 1
_NAME = re.compile(r"^step-(\d{8})-[0-9a-f]{12}$")
_TEMP = re.compile(r"^\.step-\d{8}-[0-9a-f]{12}\.tmp$")


@dataclass(frozen=True)
class Checkpoint:
    """One complete checkpoint folder and its ``checkpoint.json``."""

    path: Path
    step: int
    state: dict[str, Any]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def model_identity(folder: str | Path) -> str:
    """sha256 over the relative names and contents of every (non-hidden) file of a model folder."""
    root = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.relative_to(root).parts)):
        digest.update(f"{path.relative_to(root).as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def fingerprint(cfg: TrainConfig, train_file: Path, world_size: int, distributed_type: str) -> dict[str, Any]:
    """What a checkpoint must share with the current run to be resumed (plain JSON data)."""
    params = cfg.model_dump(mode="json", exclude={"base_model", "accelerate_config", "gate", "train_file", "out",
                                                  "metrics", "curve", "plot", *RESUME_KEYS})
    return {"params": params, "world_size": world_size, "distributed_type": distributed_type,
            "train_sha256": sha256_file(train_file), "base_model_sha256": model_identity(cfg.base_model)}


def digest(current: dict[str, Any]) -> str:
    """The fingerprint's short name in checkpoint folder names (12 hex digits of its sha256)."""
    blob = json.dumps(current, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The fingerprint keys that differ (``params.<key>`` for a training param)."""
    keys = [f"params.{k}" for k in sorted(set(old.get("params", {})) | set(new["params"]))
            if old.get("params", {}).get(k) != new["params"].get(k)]
    return keys + [k for k in new if k != "params" and old.get(k) != new[k]]


def complete(folder: Path) -> list[Checkpoint]:
    """Every complete checkpoint in ``folder``, oldest first (unreadable ones logged and skipped)."""
    found = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        match = _NAME.match(path.name)
        if not match or not path.is_dir():
            continue
        try:
            state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
            if state.get("format") != FORMAT or state.get("step") != int(match.group(1)):
                raise ValueError(f"not a format-{FORMAT} checkpoint of step {int(match.group(1))}")
        except (OSError, ValueError) as exc:
            log.warning("checkpoint %s ignored: unreadable %s (%s)", path, STATE_FILE, exc)
            continue
        found.append(Checkpoint(path, int(match.group(1)), state))
    return found


def find_resumable(folder: Path, current: dict[str, Any]) -> Checkpoint | None:
    """The newest checkpoint with the ``current`` fingerprint; every other one is named in the log."""
    chosen = None
    for checkpoint in reversed(complete(folder)):
        diff = differences(checkpoint.state.get("fingerprint", {}), current)
        if diff:
            log.warning("checkpoint %s ignored: trained with other %s", checkpoint.path, ", ".join(diff))
        elif chosen is None:
            chosen = checkpoint
    return chosen


def remove_run(folder: Path, current: dict[str, Any], reason: str) -> int:
    """Remove the checkpoints of the ``current`` fingerprint and stale temporaries; returns how many."""
    removed = 0
    for checkpoint in complete(folder):
        if not differences(checkpoint.state.get("fingerprint", {}), current):
            shutil.rmtree(checkpoint.path)
            removed += 1
    for path in folder.iterdir() if folder.is_dir() else []:
        if _TEMP.match(path.name):
            shutil.rmtree(path, ignore_errors=True)
    if removed:
        log.info("removed %d checkpoint(s) from %s: %s", removed, folder, reason)
    return removed


def clear_temporaries(folder: Path) -> None:
    """Remove the hidden folders of checkpoints whose writing was killed."""
    for path in folder.iterdir() if folder.is_dir() else []:
        if _TEMP.match(path.name):
            log.info("removing %s: a checkpoint whose writing was interrupted", path)
            shutil.rmtree(path, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _shared_path(accelerator: Any, path: Path) -> Path:
    """The main process's ``path`` on every rank."""
    if accelerator.num_processes == 1:
        return path
    from accelerate.utils import broadcast_object_list

    shared = [path]
    broadcast_object_list(shared)
    return shared[0]


def save(accelerator: Any, folder: Path, step: int, state: dict[str, Any], current: dict[str, Any] | None,
         keep: int = KEEP) -> Path:
    """Write checkpoint ``step`` atomically (every rank calls it; ``current`` is needed on the main one).

    ``state`` (step position, counters, curve) goes into ``checkpoint.json`` with the fingerprint;
    older checkpoints of the run beyond the newest ``keep`` are removed afterwards."""
    main = accelerator.is_main_process
    name = f"step-{step:08d}-{digest(current) if main else ''}"  # only the main process names folders
    temp, final = folder / f".{name}.tmp", folder / name
    if main:
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(_shared_path(accelerator, temp)))
    accelerator.wait_for_everyone()
    if main:
        assert current is not None, "the main process writes the fingerprint"
        record = {"format": FORMAT, "step": step, "fingerprint": current, **state}
        (temp / STATE_FILE).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        _fsync_tree(temp)
        if final.exists():  # the same step of an earlier run of the same fingerprint
            shutil.rmtree(final)
        os.replace(temp, final)
        _fsync_dir(folder)
        mine = [c for c in complete(folder) if not differences(c.state.get("fingerprint", {}), current)]
        for old in mine[:-keep]:
            shutil.rmtree(old.path)
        log.info("checkpoint %s written (step %d)", final, step)
    accelerator.wait_for_everyone()
    return final
