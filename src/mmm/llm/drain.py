"""SIGINT/SIGTERM while the LLM layer's event loop runs: the first signal drains, a second abandons.

The first signal stops new work: requests already on the wire finish (their answers reach the
cache as usual), nothing else is sent and no retry starts. When the run has ended, the signal's
own behaviour follows (``exception()``: ``KeyboardInterrupt`` for SIGINT, ``mmm.errors.Terminated``
for SIGTERM), so the process still exits 130/143. A second signal cancels what is still in flight.

The handlers live on the running loop (``loop.add_signal_handler``) for one run and the previous
Python-level handlers are put back afterwards. Outside the main thread nothing is installed and
signals behave as they did before.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from mmm.errors import Terminated

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Drain:
    """The stop state of one run. ``in_flight()`` describes what the first signal waits for."""

    def __init__(self, in_flight: Callable[[], str]):
        self.in_flight = in_flight
        self.signum: int | None = None  # the first signal; None while the run goes on
        self.abandoned = False  # a second signal arrived: the tasks of ``gather`` were cancelled
        self._stopped = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def stopping(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        """The first signal's name (``SIGTERM``), or "" when none arrived."""
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def exception(self) -> BaseException:
        """What the first signal would have raised had it not been held for the drain."""
        return KeyboardInterrupt() if self.signum == signal.SIGINT else Terminated()

    @contextmanager
    def handling(self) -> Iterator[bool]:
        """Handle SIGINT/SIGTERM on the running loop during the block; yields whether they are handled."""
        loop = asyncio.get_running_loop()
        installed: list[int] = []
        previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
        if threading.current_thread() is threading.main_thread():
            try:
                for sig in SIGNALS:
                    loop.add_signal_handler(sig, self._on_signal, sig)
                    installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # a loop without signal support
                self._restore(loop, installed, previous)
                installed = []
        try:
            yield bool(installed)
        finally:
            self._restore(loop, installed, previous)

    @staticmethod
    def _restore(loop: asyncio.AbstractEventLoop, installed: list[int], previous: dict[int, Any]) -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)  # leaves SIG_DFL / default_int_handler: put the previous one back
            if previous[sig] is not None:
                signal.signal(sig, previous[sig])

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.signum is None:
            self.signum = signum
            self._stopped.set()
            log.warning("%s: finishing %s (signal again to stop now)", name, self.in_flight())
        elif not self.abandoned:
            self.abandoned = True
            log.warning("%s again: stopping now, abandoning %s", name, self.in_flight())
            for task in self._tasks:
                task.cancel()

    async def gather(self, *coros: Coroutine[Any, Any, None]) -> None:
        """Run ``coros`` as tasks to their end; a second signal cancels them, and then this returns."""
        self._tasks = [asyncio.create_task(coro) for coro in coros]
        if not self._tasks:
            return
        try:
            await asyncio.gather(*self._tasks)
        except asyncio.CancelledError:
            if not self.abandoned:
                raise
            await asyncio.wait(self._tasks)  # let every cancelled task unwind before the client closes

    async def unless_stopped(self, coro: Coroutine[Any, Any, Any]) -> bool:
        """Await ``coro`` (a wait: rate limiter, backoff, poll interval) unless a signal comes first.

        True when it finished; False when the run was told to stop (``coro`` is then cancelled).
        """
        if self.stopping:
            coro.close()
            return False
        work = asyncio.ensure_future(coro)
        stop = asyncio.ensure_future(self._stopped.wait())
        try:
            done, _ = await asyncio.wait((work, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            work.cancel()
            stop.cancel()
        if work in done:
            work.result()  # its exception, if any
            return True
        return False
