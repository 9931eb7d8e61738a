"""Kill a real run mid-way (SIGKILL, no cleanup), rerun: only the rest is sent, no row answered twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from fake_openai import Fault

from mmm.llm import LLMRequest, ResponseCache, run_requests

TOTAL, ANSWERED_BEFORE_KILL = 40, 12

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from mmm.llm import LLMConfig, LLMRequest, run_requests
    config = LLMConfig.model_validate(json.loads(sys.argv[1]))
    run_requests([LLMRequest(f"r{i}", f"prompt {i}") for i in range(int(sys.argv[2]))], config)
    """
)


def wait_for_lines(path: Path, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text(encoding="utf-8").splitlines()) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {count} lines")


def test_a_killed_run_loses_nothing_answered_and_the_rerun_sends_only_the_rest(fake_openai, openai_config, tmp_path):
    # the server answers the first 12 requests, then hangs every later one: the run is mid-flight
    fake_openai.faults = lambda call: Fault.HANG if call.index >= ANSWERED_BEFORE_KILL else None
    settings = openai_config.public_dict()
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, json.dumps(settings), str(TOTAL)],
                            env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    shard = ResponseCache(openai_config.cache_dir, openai_config.family, openai_config.model).path
    try:
        wait_for_lines(shard, ANSWERED_BEFORE_KILL)
        time.sleep(0.2)  # give any straggler the chance to (wrongly) write more
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert len(shard.read_text(encoding="utf-8").splitlines()) == ANSWERED_BEFORE_KILL

    fake_openai.faults = None
    fake_openai.release()  # the hung requests of the dead run end without an answer
    report = run_requests([LLMRequest(f"r{i}", f"prompt {i}") for i in range(TOTAL)], openai_config)
    assert report.summary.cache_hits == ANSWERED_BEFORE_KILL
    assert report.summary.sent == TOTAL - ANSWERED_BEFORE_KILL
    assert all(r.ok for r in report.results.values())
    assert len(fake_openai.answered) == TOTAL and set(fake_openai.answered.values()) == {1}
    cache = ResponseCache(openai_config.cache_dir, openai_config.family, openai_config.model)
    assert len(cache) == TOTAL and cache.torn_lines == 0
    assert len(shard.read_text(encoding="utf-8").splitlines()) == TOTAL  # compacted: one line per answer
