"""Response cache: every successful answer, keyed by what produced it, in append-only JSONL shards.

Design choices (why):
- The key is sha256 of (producer family, model, system + prompt, generation params[, constraint]). The model
  is the configured name, or what the caller says identifies it (``run_requests(cache_as=...)``: prediction
  passes the sha256 of the weights a server serves, so a retrained model under the same name is a new model).
  The parser is not in the key, so fixing a parser reuses answers already paid for.
- One shard per (family, model): ``<family>__<model>.jsonl``. Entries hold only the key, the text,
  token counts and finish reason, never the prompt, so the default model's shard stays small
  enough to commit to git.
- Writers open the shard with O_APPEND under an exclusive ``flock`` and write whole lines, one
  ``write`` per batch, repeated for the rest if the kernel writes less (a file size limit, a full
  disk). A killed run therefore loses at most the answers still in flight, and two
  runs sharing a cache (two stages, two terminals) interleave whole lines, never bytes.
- Readers skip a torn last line (a crash mid-write) with a warning, and duplicates (two runs
  that answered the same prompt) resolve to the first entry.
- ``compact()`` rewrites a shard sorted by key without duplicates, under the same lock, so the
  committed file is the same whatever order the answers arrived in. Writers re-open the shard
  for every append, so they never write into a replaced file.
- A shard that is a link (DVC checks tracked files out as hardlinks or symlinks into its cache
  with ``cache.type`` hardlink/symlink) or read-only is first replaced by a private copy, under
  the lock, so an append never changes a file outside the folder, e.g. an object in DVC's cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from mmm.llm.types import Completion, GenParams

log = logging.getLogger(__name__)

KEY_VERSION = 1
LOCK_FILE = ".lock"
GITIGNORE = "# written by mmm.llm: the lock and batch bookkeeping are local state, the shards are data\n.lock\n.*.tmp\nbatches/\n"


def cache_key(
    family: str,
    model: str,
    prompt: str,
    system: str | None,
    params: GenParams,
    constraint: dict[str, Any] | None = None,
) -> str:
    """The sha256 hex key of one generation. Stable across runs, machines and Python versions."""
    payload: dict[str, Any] = {
        "v": KEY_VERSION,
        "family": family,
        "model": model,
        "system": system,
        "prompt": prompt,
        "params": params.key_fields(),
    }
    if constraint:
        payload["constraint"] = constraint
    blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def shard_name(family: str, model: str) -> str:
    def slug(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "_"

    return f"{slug(family)}__{slug(model)}.jsonl"


class ResponseCache:
    """The answers of one (family, model), loaded into memory once and appended to as they arrive."""

    def __init__(self, cache_dir: str | Path, family: str, model: str):
        self.dir = Path(cache_dir)
        self.path = self.dir / shard_name(family, model)
        self.family = family
        self.model = model
        self.entries: dict[str, dict[str, Any]] = {}
        self.added = 0
        self.torn_lines = 0
        if self.path.exists():
            self._load()

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def get(self, key: str) -> Completion | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        return Completion(
            text=entry["text"],
            prompt_tokens=int(entry.get("prompt_tokens", 0)),
            completion_tokens=int(entry.get("completion_tokens", 0)),
            finish_reason=entry.get("finish_reason"),
            stop_reason=entry.get("stop_reason"),
        )

    def put_many(self, answers: Iterable[tuple[str, Completion]]) -> int:
        """Append answers (successes, and a greedy local model's empty answers); returns how many were new."""
        lines = []
        for key, completion in answers:
            if key in self.entries:
                continue
            entry = _entry(key, completion)
            self.entries[key] = entry
            lines.append(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
        if not lines:
            return 0
        self._prepare_dir()
        with self._locked():
            _own_copy(self.path)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                prefix = "" if _ends_with_newline(fd) else "\n"  # seal a torn line left by a crash
                _write_all(fd, (prefix + "".join(lines)).encode("utf-8"))
            finally:
                os.close(fd)
        self.added += len(lines)
        return len(lines)

    def put(self, key: str, completion: Completion) -> None:
        self.put_many([(key, completion)])

    def compact(self) -> bool:
        """Rewrite the shard sorted by key, one line per key; returns whether the file changed."""
        if not self.path.exists():
            return False
        with self._locked():
            raw = self.path.read_bytes()
            merged: dict[str, dict[str, Any]] = {}
            for entry in _parse(raw.decode("utf-8", errors="replace"), str(self.path)):
                merged.setdefault(entry["key"], entry)
            text = "".join(
                json.dumps(merged[k], ensure_ascii=False, separators=(",", ":")) + "\n" for k in sorted(merged)
            )
            if text.encode("utf-8") == raw:
                return False
            _replace(self.path, lambda fh: fh.write(text.encode("utf-8")))
        for key, entry in merged.items():
            self.entries.setdefault(key, entry)
        return True

    # Internals ---------------------------------------------------------------------------------

    def _load(self) -> None:
        text = self.path.read_text(encoding="utf-8", errors="replace")
        for entry in _parse(text, str(self.path), on_bad=self._count_torn):
            self.entries.setdefault(entry["key"], entry)
        if self.torn_lines:
            log.warning("%s: skipped %d unreadable line(s) (a run killed mid-write?)", self.path, self.torn_lines)

    def _count_torn(self) -> None:
        self.torn_lines += 1

    def _prepare_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        ignore = self.dir / ".gitignore"
        if not ignore.exists():
            with contextlib.suppress(FileExistsError):
                with open(ignore, "x", encoding="utf-8") as fh:
                    fh.write(GITIGNORE)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._prepare_dir()
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _entry(key: str, completion: Completion) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "key": key,
        "text": completion.text,
        "prompt_tokens": int(completion.prompt_tokens),
        "completion_tokens": int(completion.completion_tokens),
    }
    if completion.finish_reason:
        entry["finish_reason"] = completion.finish_reason
    if completion.stop_reason:
        entry["stop_reason"] = completion.stop_reason
    return entry


def _parse(text: str, where: str, on_bad: Any = None) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or not isinstance(
                entry.get("text"), str
            ):
                raise ValueError("not a cache entry")
        except ValueError:
            log.debug("%s:%d: unreadable cache line skipped", where, number)
            if on_bad:
                on_bad()
            continue
        yield entry


def _replace(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Write a new file next to ``path`` (a name the folder's .gitignore skips), then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _own_copy(path: Path) -> None:
    """Make ``path`` a writable regular file of its own before appending to it in place.

    A symlink, a hardlink (more than one name) or a read-only file, as DVC checks tracked files out
    with ``cache.type`` symlink or hardlink, is replaced by a copy of its content: the append then
    changes this folder only, never the linked object (root could write a read-only one)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISLNK(info.st_mode) and info.st_nlink == 1 and info.st_mode & stat.S_IWUSR:
        return
    if not path.exists():  # a symlink to a removed object: nothing to keep
        path.unlink()
        return
    with open(path, "rb") as src:
        _replace(path, lambda fh: shutil.copyfileobj(src, fh))


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written: a write may be short (file size limit, a full disk)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _ends_with_newline(fd: int) -> bool:
    size = os.fstat(fd).st_size
    if size == 0:
        return True
    return os.pread(fd, 1, size - 1) == b"\n"
