"""A running process's stderr, read line by line as it comes, so a test can wait for a log line."""

from __future__ import annotations

import re
import subprocess
import threading


class StderrLines:
    """Collects ``proc.stderr`` (a text pipe) in a thread; ``wait_for`` a line, ``text`` once it exited."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: list[str] = []
        self._eof = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="stderr-lines", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:  # type: ignore[union-attr]
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 30.0) -> str:
        """The first line matching ``pattern``; fails if the process ends (or ``timeout`` passes) without one."""
        found = re.compile(pattern)

        def hit() -> str | None:
            return next((line for line in self.lines if found.search(line)), None)

        with self._changed:
            self._changed.wait_for(lambda: hit() is not None or self._eof, timeout)
            line = hit()
        assert line is not None, f"no stderr line matching {pattern!r} (exit {self.proc.poll()}): {self.text}"
        return line

    def finish(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit and its stderr to be read; its exit code."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    @property
    def text(self) -> str:
        with self._changed:
            return "".join(self.lines)
