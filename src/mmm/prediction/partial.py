"""Partial predictions: the chunks an unfinished run has finished, so that a rerun redoes none of them.

One file per run in ``predict.checkpoints`` (``checkpoints/predict``: gitignored, dvcignored, not a DVC
out, so ``dvc repro`` leaves it in place), named by its fingerprint::

    predict-3f2a9c01b7de.jsonl    line 1: {"fingerprint": {...}}
                                  then one line per finished chunk: {"chunk": i, "rows": [...], "relabelled": n}

* The *fingerprint* is what decides the answers and the chunking: the backend, the params that change a
  result (:data:`RESULT_KEYS`), the world size (hf), the sha256 of the test file and of the model's weights
  (:func:`weights_sha256`), and the output path (two runs into two files never share a partial). A file of
  another fingerprint is never read; the run names it in the log and leaves it.
* A chunk is appended as one ``write`` and fsynced; a kill mid-write leaves a torn last line, which the
  next run cuts off (that chunk is redone). Chunks finish in order, so the file holds a prefix of them.
* Once the predictions and metrics are published, the run removes its file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmm.config import PredictConfig
from mmm.modeling.checkpoints import sha256_file

log = logging.getLogger(__name__)

FORMAT = 1
PREFIX = "predict-"
MODEL_CARD = "README.md"  # written by train, decides no answer
# the params that change what a backend answers or how rows are chunked (locations, server and speed knobs do not)
RESULT_KEYS = {
    "hf": ("max_new_tokens", "max_rows_per_cell", "seed", "chunk_rows", "batch_size", "dtype", "threads",
           "constrained", "rescore_labels", "label_prototypes"),
    "openai": ("max_new_tokens", "max_rows_per_cell", "seed", "chunk_rows"),
}


def weights_sha256(folder: str | Path) -> str:
    """sha256 over the names and contents of a model folder's files (weights, config, tokenizer), the model
    card and hidden files left out: the identity of what answers, whatever name a server gives it."""
    root = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MODEL_CARD
                       and not any(s.startswith(".") for s in p.relative_to(root).parts)):
        digest.update(f"{path.relative_to(root).as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def fingerprint(cfg: PredictConfig, weights: str, test_sha256: str, out: str | Path, processes: int) -> dict[str, Any]:
    """What a partial file must share with the current run to be resumed (plain JSON data)."""
    params = {key: getattr(cfg, key) for key in RESULT_KEYS[cfg.backend]}
    found = {"format": FORMAT, "backend": cfg.backend, "params": params, "model_sha256": weights,
             "test_sha256": test_sha256, "out": str(Path(out).resolve())}
    if cfg.backend == "hf":
        found["processes"] = processes
    return found


class Partial:
    """The partial file of one fingerprint: which chunks are done, appending one, reading them back in order."""

    def __init__(self, folder: str | Path, fp: dict[str, Any]):
        blob = json.dumps(fp, sort_keys=True, ensure_ascii=False)
        self.folder = Path(folder)
        self.path = self.folder / f"{PREFIX}{hashlib.sha256(blob.encode()).hexdigest()[:12]}.jsonl"
        self.header = json.dumps({"fingerprint": json.loads(blob)}, sort_keys=True, ensure_ascii=False) + "\n"
        self.done: dict[int, int] = {}  # chunk index -> byte offset of its line
        self._load()

    def _load(self) -> None:
        for other in sorted(self.folder.glob(f"{PREFIX}*.jsonl")):
            if other != self.path:
                log.warning("partial predictions %s ignored: another model, test file, output or params", other)
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if not data.startswith(self.header.encode()):
            log.warning("partial predictions %s ignored: its header is not this run's fingerprint", self.path)
            self.path.unlink()
            return
        offset = good = len(self.header.encode())
        for line in data[offset:].splitlines(keepends=True):
            try:
                chunk = json.loads(line)["chunk"]
            except (ValueError, KeyError, TypeError):
                break
            if not line.endswith(b"\n") or chunk != len(self.done):
                break
            self.done[chunk] = offset
            offset += len(line)
            good = offset
        if good < len(data):
            log.warning("%s: cut a torn last chunk (a run killed mid-write); it is predicted again", self.path)
            os.truncate(self.path, good)
        if self.done:
            log.info("resuming from %s: %d chunk(s) done", self.path, len(self.done))

    def append(self, index: int, rows: list[dict], relabelled: int) -> None:
        """Save one finished chunk (one write, fsynced); chunks come in order."""
        if index != len(self.done):
            raise ValueError(f"chunk {index} after {len(self.done)} done chunks")
        self.folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"chunk": index, "rows": rows, "relabelled": relabelled}, ensure_ascii=False) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            start = os.fstat(fd).st_size
            if start == 0:
                os.write(fd, self.header.encode())
                start = len(self.header.encode())
            data = memoryview(line.encode("utf-8"))
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
        self.done[index] = start

    def chunks(self) -> Iterator[dict[str, Any]]:
        """The finished chunks in order, one in memory at a time."""
        if not self.done:  # nothing chosen, or nothing finished: no file
            return
        with open(self.path, "rb") as fh:
            for index in range(len(self.done)):
                fh.seek(self.done[index])
                yield json.loads(fh.readline())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
