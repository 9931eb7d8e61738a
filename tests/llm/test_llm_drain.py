"""SIGTERM / Ctrl-C on a real run against the fake server: the first signal drains, a second abandons.

The run is a real process (``run_requests`` over the real ``openai`` client); the server's
counters are the witness: after a drained stop and a rerun, no prompt was answered twice.
Nothing here measures time: the signals follow what the server and the cache have seen.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fake_openai import Fault
from stderr_lines import StderrLines

import mmm
from configs import replace
from mmm.llm import LLMRequest, ResponseCache, run_requests

TOTAL = 200

SCRIPT = textwrap.dedent(
    """
    import json, logging, sys
    from mmm.errors import Terminated
    from mmm.llm import LLMConfig, LLMRequest, run_requests
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    config = LLMConfig.model_validate(json.loads(sys.argv[1]))
    try:
        run_requests([LLMRequest(f"r{i}", f"prompt {i}") for i in range(int(sys.argv[2]))], config)
    except Terminated:
        print("raised Terminated", file=sys.stderr)
        sys.exit(143)
    except KeyboardInterrupt:
        print("raised KeyboardInterrupt", file=sys.stderr)
        sys.exit(130)
    """
)


def requests(n: int) -> list[LLMRequest]:
    return [LLMRequest(f"r{i}", f"prompt {i}") for i in range(n)]


class Run:
    """``SCRIPT`` in a process of its own; its stderr is collected as it comes."""

    def __init__(self, config, total: int):
        env = {**os.environ, "PYTHONPATH": str(Path(mmm.__file__).resolve().parents[1])}
        self.proc = subprocess.Popen([sys.executable, "-c", SCRIPT, json.dumps(config.public_dict()), str(total)],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.err = StderrLines(self.proc)

    def wait_until(self, condition, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if condition():
                return
            time.sleep(0.01)
        raise AssertionError(f"condition not reached (exit {self.proc.poll()}): {self.err.text}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start():
    runs: list[Run] = []

    def make(config, total: int) -> Run:
        runs.append(Run(config, total))
        return runs[-1]

    yield make
    for run in runs:
        run.kill()


def cached(config) -> int:
    shard = ResponseCache(config.cache_dir, config.family, config.model).path
    return len(shard.read_text(encoding="utf-8").splitlines()) if shard.exists() else 0


@pytest.mark.parametrize("signum, code, raised", [(signal.SIGTERM, 143, "Terminated"),
                                                  (signal.SIGINT, 130, "KeyboardInterrupt")])
def test_a_signal_drains_the_requests_in_flight_and_the_rerun_sends_no_answered_prompt(
        fake_openai, openai_config, start, signum, code, raised):
    fake_openai.latency = 0.2
    config = replace(openai_config, concurrency=8)
    run = start(config, TOTAL)
    run.wait_until(lambda: cached(config) >= 40)
    run.proc.send_signal(signum)
    assert run.err.finish() == code
    name = signal.Signals(signum).name
    assert re.search(rf"{name}: finishing \d+ request\(s\) in flight \(signal again to stop now\)", run.err.text)
    assert f"stopped by {name}; rerun to continue" in run.err.text and f"raised {raised}" in run.err.text
    assert "Traceback" not in run.err.text
    first = cached(config)
    assert first < TOTAL  # stopped early
    # every request that went out was answered, and every answer reached the cache
    assert len({c.prompt for c in fake_openai.calls}) == len(fake_openai.answered) == first

    report = run_requests(requests(TOTAL), replace(config, concurrency=20))  # the rerun: more at once, to be quick
    assert report.summary.cache_hits == first and report.summary.sent == TOTAL - first
    assert all(r.ok for r in report.results.values())
    assert len(fake_openai.answered) == TOTAL and max(fake_openai.answered.values()) == 1


@pytest.mark.parametrize("first_signal, second_signal, code", [(signal.SIGTERM, signal.SIGTERM, 143),
                                                               (signal.SIGINT, signal.SIGINT, 130),
                                                               (signal.SIGTERM, signal.SIGINT, 143)])
def test_a_second_signal_abandons_the_requests_in_flight_at_once(
        fake_openai, openai_config, start, first_signal, second_signal, code):
    fake_openai.faults = lambda call: Fault.HANG  # nothing is ever answered: only abandoning ends the run
    config = replace(openai_config, concurrency=8, timeout_s=600.0)
    run = start(config, 20)
    run.wait_until(lambda: len(fake_openai.calls) == 8)
    run.proc.send_signal(first_signal)
    run.err.wait_for(r"finishing 8 request\(s\) in flight")
    assert run.proc.poll() is None  # draining: waiting for the hung requests
    run.proc.send_signal(second_signal)
    assert run.err.finish() == code  # the hung requests were abandoned (their timeout is 10 minutes)
    assert re.search(rf"{signal.Signals(second_signal).name} again: stopping now, abandoning 8 request", run.err.text)
    assert "Traceback" not in run.err.text
    assert len(fake_openai.calls) == 8 and not fake_openai.answered  # nothing new was sent after the first signal
    assert cached(config) == 0


def test_a_request_that_fails_during_the_drain_is_not_retried(fake_openai, openai_config, start):
    # "prompt 0" hangs on its first attempt; everything else is answered
    fake_openai.faults = lambda call: Fault.HANG if call.prompt == "prompt 0" and call.attempt == 1 else None
    config = replace(openai_config, concurrency=4, max_retries=3, timeout_s=600.0)
    run = start(config, 12)
    run.wait_until(lambda: cached(config) == 11)
    run.proc.send_signal(signal.SIGTERM)
    run.err.wait_for(r"SIGTERM: finishing 1 request\(s\) in flight")
    fake_openai.release()  # the hung request ends without an answer: a retryable connection failure
    assert run.err.finish() == 143
    assert [c.attempt for c in fake_openai.calls if c.prompt == "prompt 0"] == [1]  # no retry after the signal
    assert "1 failed (connection 1)" in run.err.text and "stopped by SIGTERM" in run.err.text


def test_sigterm_while_a_batch_runs_keeps_it_pending_and_the_rerun_collects_it(fake_openai, openai_config, start):
    config = replace(openai_config, batch=True, batch_wait_s=600.0, batch_poll_s=0.05)
    run = start(config, 6)
    run.wait_until(lambda: any((Path(config.cache_dir) / "batches").glob("*.json")))  # submitted, state kept
    run.proc.send_signal(signal.SIGTERM)
    assert run.err.finish() == 143  # the run would otherwise wait up to batch_wait_s for the batch
    assert "SIGTERM: finishing the Batch API call under way, if any" in run.err.text
    assert "1 batch(es) pending" in run.err.text and "Traceback" not in run.err.text

    fake_openai.complete_batches()
    report = run_requests(requests(6), replace(config, batch_wait_s=0.0))
    assert all(r.ok for r in report.results.values()) and report.summary.sent == 0
    assert len(fake_openai.batches) == 1 and set(fake_openai.answered.values()) == {1}


def test_a_run_puts_the_previous_signal_handlers_back(fake_openai, openai_config):
    def mine(signum, frame):  # pragma: no cover - never called
        raise AssertionError("not expected")

    previous_term = signal.signal(signal.SIGTERM, mine)
    previous_int = signal.getsignal(signal.SIGINT)
    try:
        assert all(r.ok for r in run_requests(requests(3), openai_config).results.values())
        assert signal.getsignal(signal.SIGTERM) is mine and signal.getsignal(signal.SIGINT) is previous_int
    finally:
        signal.signal(signal.SIGTERM, previous_term)
