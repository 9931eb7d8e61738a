"""A command's outputs, published as one set: all old or all new, never a mix.

Every command that writes files names them up front::

    with publish.outputs({"kept": kept, "rejected": rejected}, inputs=[source]) as out:
        frame.write_ndjson(out["kept"])
        ...

* Before anything is read, outputs that collide with each other or with an input (the same
  path, a symlink or hard link to it, or a file inside an output folder) are refused
  (``OutputCollision``, exit 2).
* Each output is written to a hidden temporary beside its target (``.NAME.XXXXXXXX.tmp``), created
  with the process umask like any other file.
* When the block ends normally, the temporaries replace their targets with SIGINT/SIGTERM held off,
  so an interrupt arrives before the first rename or after the last. On any exception the
  temporaries are removed and the previous outputs stay as they were.
* :func:`run_interruptible` runs a command in a worker thread so that Ctrl-C stops it within a
  fraction of a second even while polars holds the main thread in native code: the main thread
  removes every live temporary, forbids new ones, and the command exits 130 (143 for SIGTERM).

SIGKILL cannot be caught: it may leave hidden ``.NAME.*.tmp`` files (and, for a folder output,
``.NAME.*.old``) beside the targets; the targets themselves are always a complete old or new set.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from mmm.errors import EXIT_USAGE, MMMError

T = TypeVar("T")

_LOCK = threading.RLock()
_LIVE: set[Path] = set()  # temporaries this process created and has not yet renamed or removed
_abandoned = threading.Event()  # set once an interrupt gave up on the running command
HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class OutputCollision(MMMError):
    """Two outputs of one command are the same file, or an output would overwrite an input."""

    exit_code = EXIT_USAGE


class Abandoned(BaseException):
    """Raised in a worker that tries to publish after the user interrupted the command."""


def _keys(path: Path) -> set[tuple[str, object]]:
    """What makes two paths one file: the same resolved path, or the same inode when it exists."""
    keys: set[tuple[str, object]] = {("path", path.resolve())}
    try:
        stat = path.stat()
        keys.add(("inode", (stat.st_dev, stat.st_ino)))
    except OSError:
        pass
    return keys


def check_distinct(outputs: Mapping[str, Path], inputs: Iterable[Path] = (), folders: Iterable[str] = ()) -> None:
    """Raise ``OutputCollision`` naming every output that is another output or an input.

    Paths are the same file when they resolve alike (symlinks followed) or share an inode (hard
    links). ``folders`` names the outputs that are directories: an input or another output inside
    one of them collides with it too.
    """
    named = [(f"output {name!r}", Path(path)) for name, path in outputs.items()]
    named += [("input", Path(path)) for path in inputs]
    keys = [_keys(path) for _, path in named]
    problems: list[str] = []
    for i, (label, path) in enumerate(named):
        for j in range(i + 1, len(named)):
            other_label, other = named[j]
            if label == other_label == "input" or not keys[i] & keys[j]:
                continue
            problems.append(f"{other}: {other_label} is the same file as {label} ({path})")
    for name in folders:
        folder = Path(outputs[name]).resolve()
        for label, path in named:
            inner = path.resolve()
            if label != f"output {name!r}" and inner != folder and inner.is_relative_to(folder):
                problems.append(f"{path}: {label} lies inside output folder {name!r} ({outputs[name]})")
    if problems:
        raise OutputCollision(*problems, "nothing was read or written; give each output its own path")


def _temp_beside(target: Path, folder: bool, suffix: str = "tmp") -> Path:
    """Create and register a hidden temporary next to ``target`` (mode from the umask)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK:
        if _abandoned.is_set():
            raise Abandoned()
        while True:
            tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.{suffix}"
            try:
                if folder:
                    os.mkdir(tmp)
                else:
                    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            except FileExistsError:
                continue
            _LIVE.add(tmp)
            return tmp


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    _LIVE.discard(path)


@contextmanager
def held_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then deliver the first one that arrived.

    In the main thread the Python handlers are swapped for a recorder; in a worker thread the
    module lock is held, which the interrupt path in the main thread waits for.
    """
    with _LOCK:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        arrived: list[int] = []
        previous = {sig: signal.signal(sig, lambda signum, frame: arrived.append(signum)) for sig in HELD_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if arrived:
                signal.raise_signal(arrived[0])


class Outputs(Mapping[str, Path]):
    """The temporaries of one output set, by output name (see :func:`outputs`)."""

    def __init__(self, targets: Mapping[str, Path], folders: Iterable[str]):
        self.targets = {name: Path(path) for name, path in targets.items()}
        self.folders = set(folders)
        self._temps: dict[str, Path] = {}

    def __getitem__(self, name: str) -> Path:
        if name not in self._temps:
            self._temps[name] = _temp_beside(self.targets[name], folder=name in self.folders)
        return self._temps[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.targets)

    def __len__(self) -> int:
        return len(self.targets)

    def _commit(self) -> None:
        """Replace every target by its temporary (outputs never written are left alone)."""
        with held_signals():
            if _abandoned.is_set():
                raise Abandoned()
            olds: list[Path] = []
            for name, tmp in self._temps.items():
                target = self.targets[name]
                if name in self.folders and target.exists():
                    old = _temp_beside(target, folder=False, suffix="old")
                    old.unlink()
                    os.replace(target, old)
                    olds.append(old)
                os.replace(tmp, target)
                _LIVE.discard(tmp)
            self._temps.clear()
            for old in olds:
                _remove(old)

    def _discard(self) -> None:
        with _LOCK:
            for tmp in self._temps.values():
                _remove(tmp)
            self._temps.clear()


@contextmanager
def outputs(
    targets: Mapping[str, str | Path | None],
    inputs: Iterable[str | Path | None] = (),
    folders: Iterable[str] = (),
) -> Iterator[Outputs]:
    """Publish ``targets`` (name -> path; ``None`` entries are skipped) as one set; see the module doc.

    The block writes each output to ``out[name]``; a folder output (named in ``folders``) is
    a fresh empty folder. Collisions are refused before the block runs.
    """
    given = {name: Path(path) for name, path in targets.items() if path is not None}
    folder_names = [name for name in folders if name in given]
    check_distinct(given, [Path(p) for p in inputs if p is not None], folder_names)
    out = Outputs(given, folder_names)
    try:
        yield out
        out._commit()
    finally:
        out._discard()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """One output published alone: a temporary beside ``path`` replaces it if the block succeeds."""
    with outputs({"file": path}) as out:
        yield out["file"]


def abandon() -> None:
    """Give up on the running command: remove every live temporary and refuse to publish more."""
    with _LOCK:
        _abandoned.set()
        for tmp in list(_LIVE):
            _remove(tmp)


def abandoned() -> bool:
    """Whether an interrupt abandoned a command whose worker thread may still be running."""
    return _abandoned.is_set()


def run_interruptible(work: Callable[[], T], poll_seconds: float = 0.05) -> T:
    """Run ``work`` in a worker thread; an interrupt in the main thread abandons it at once.

    On KeyboardInterrupt (or any exception raised by a signal handler) the live temporaries are
    removed, nothing more is published, and the exception propagates, so the CLI exits 130/143
    while the worker is still inside native code. Called off the main thread, ``work`` runs inline.
    """
    if threading.current_thread() is not threading.main_thread():
        return work()
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except Abandoned:
            pass
        except BaseException as exc:  # handed to the main thread, which re-raises it
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="mmm-command", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(poll_seconds)
    except BaseException:
        abandon()
        raise
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def exit_now(code: int) -> None:
    """Exit with ``code`` without waiting for an abandoned worker (streams flushed first)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
