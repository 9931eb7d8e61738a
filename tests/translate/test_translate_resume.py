"""`mmm translate` stopped for real (SIGTERM, SIGKILL) against the fake server, then run again.

The server's call log is the witness: SIGTERM (exit 143) while requests hang drains them (nothing
new is sent, the run waits for the requests in flight) and loses nothing answered, and the rerun
sends only what was never answered; after SIGKILL mid-traffic only requests that were in flight
(at most ``llm.concurrency``) go out a second time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from fake_openai import Fault
from stderr_lines import StderrLines
from translate_fakes import (
    ReferenceTranslator,
    mapped_rows,
    read_jsonl,
    references,
    write_jsonl,
)

import mmm
from configs import write_params

CONCURRENCY = 4


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    src = str(Path(mmm.__file__).parents[1])  # the mmm under test, whatever the working directory
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.Popen([sys.executable, "-m", "mmm.cli", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def cache_lines(cache_dir: Path) -> int:
    return sum(len(p.read_text(encoding="utf-8").splitlines()) for p in cache_dir.glob("*.jsonl"))


def wait_for(condition, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"condition not reached (exit {proc.poll()}): {proc.stderr.read() if proc.poll() is not None else ''}")


@pytest.fixture
def command(fake_openai, openai_env, tmp_path, sample_dir):
    rows = mapped_rows(sample_dir, "en", per_dataset=6)  # 36 rows
    fake_openai.answer = ReferenceTranslator(rows, references(sample_dir, "en"), "ja-en")
    params = write_params(tmp_path / "params.yaml", translate={"method": "one_shot"}, logs={"dir": str(tmp_path / "logs")},
                          llm={"backend": "openai", "model": "fake-model", "api": "completions", "max_retries": 0,
                               "concurrency": CONCURRENCY, "timeout_s": 60, "progress": False})
    out = tmp_path / "translate" / "en.jsonl"
    args = ["translate", str(write_jsonl(tmp_path / "labels" / "en.jsonl", rows)), "--to", "en", "--out", str(out),
            "--failed", str(tmp_path / "translate" / "en.failed.jsonl"), "--metrics", str(tmp_path / "m.json"),
            "--params", str(params), "--base-url", fake_openai.base_url, "--cache-dir", str(tmp_path / "cache")]
    return args, rows, out


def test_sigterm_exits_143_and_the_rerun_sends_no_answered_prompt(fake_openai, command, tmp_path):
    args, rows, out = command
    answered_before = 10
    fake_openai.faults = lambda call: Fault.HANG if call.index >= answered_before else None  # the rest stays in flight
    proc = start(args, tmp_path)
    wait_for(lambda: cache_lines(tmp_path / "cache") >= answered_before and len(fake_openai.calls) >= answered_before + CONCURRENCY, proc)
    err = StderrLines(proc)
    proc.send_signal(signal.SIGTERM)
    err.wait_for(rf"SIGTERM: finishing {CONCURRENCY} request\(s\) in flight")  # the drain waits for the hung ones
    fake_openai.release()  # they end without an answer (connection closed), and are not retried
    assert err.finish() == 143 and "error: terminated" in err.text and "Traceback" not in err.text
    assert not out.exists() and not [p for p in tmp_path.rglob(".*") if "cache" not in p.parts]  # nothing half-published
    first = {c.prompt for c in fake_openai.calls}
    answered = set(fake_openai.answered)
    assert len(answered) == answered_before == cache_lines(tmp_path / "cache")
    assert len(first) == answered_before + CONCURRENCY  # the hung ones: sent, never answered

    fake_openai.faults = None
    fake_openai.release()
    calls_before = len(fake_openai.calls)
    rerun = start(args, tmp_path)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    again = [c.prompt for c in fake_openai.calls[calls_before:]]
    assert not set(again) & answered  # the call log: no answered prompt went out twice
    assert len(again) == len(rows) - answered_before and set(fake_openai.answered.values()) == {1}
    assert len(read_jsonl(out)) == len(rows)


def test_sigkill_resends_at_most_the_requests_in_flight(fake_openai, command, tmp_path):
    args, rows, out = command
    fake_openai.latency = 0.15  # answers keep arriving while the process dies
    proc = start(args, tmp_path)
    wait_for(lambda: cache_lines(tmp_path / "cache") >= 12, proc)
    proc.kill()
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.5)  # the server finishes the requests the dead client had sent
    first = Counter(c.prompt for c in fake_openai.calls)
    cached = cache_lines(tmp_path / "cache")
    assert 12 <= cached < len(rows) and len(first) - cached <= CONCURRENCY

    calls_before = len(fake_openai.calls)
    rerun = start(args, tmp_path)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    again = Counter(c.prompt for c in fake_openai.calls[calls_before:])
    resent = set(again) & set(first)
    assert len(again) == len(rows) - cached  # everything cached before the kill came from the cache
    assert len(resent) <= CONCURRENCY and max(fake_openai.answered.values()) <= 2
    assert len(read_jsonl(out)) == len(rows)
