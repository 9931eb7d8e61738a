"""The Batch API flow across runs: submit, stay pending, collect, resubmit only what failed."""

from __future__ import annotations

import json
from pathlib import Path

from fake_openai import Fault

from configs import replace
from mmm.llm import LLMRequest, run_requests
from mmm.llm import types as t


def requests(n: int) -> list[LLMRequest]:
    return [LLMRequest(f"r{i}", f"prompt {i}") for i in range(n)]


def state_files(config) -> list[Path]:
    return sorted((Path(config.cache_dir) / "batches").glob("*.json"))


def test_submit_then_pending_then_collect_then_resubmit_only_failures(fake_openai, openai_config):
    config = replace(openai_config, batch=True)

    first = run_requests(requests(6), config)  # run 1: upload + create, nothing answered yet
    assert len(fake_openai.batches) == 1 and fake_openai.completion_calls == 0
    batch = next(iter(fake_openai.batches.values()))
    assert first.summary.pending_batches == [batch["id"]] and first.summary.sent == 6
    assert {r.error for r in first.results.values()} == {t.BATCH_PENDING}
    lines = [json.loads(x) for x in fake_openai.files[batch["input_file_id"]]["content"].decode().splitlines()]
    assert {x["url"] for x in lines} == {"/v1/chat/completions"} and len({x["custom_id"] for x in lines}) == 6
    assert lines[0]["body"]["model"] == "fake-model" and lines[0]["body"]["messages"][-1]["role"] == "user"
    assert len(state_files(config)) == 1

    second = run_requests(requests(6), config)  # run 2: still running, nothing resubmitted
    assert len(fake_openai.batches) == 1 and second.summary.failures == {t.BATCH_PENDING: 6}

    fake_openai.faults = lambda call: {"prompt 2": Fault.SERVER_ERROR, "prompt 4": Fault.EMPTY}.get(call.prompt)
    fake_openai.complete_batches()
    third = run_requests(requests(6), config)  # run 3: collect
    assert third.summary.answered == 4 and third.summary.failures == {t.BATCH_FAILED: 1, t.EMPTY: 1}
    assert third.results["r0"].text == "answer: prompt 0" and "HTTP 500" in third.results["r2"].detail
    assert state_files(config) == [] and third.summary.pending_batches == []
    assert len(fake_openai.batches) == 1  # the failed rows wait for the next run

    fake_openai.faults = None
    fourth = run_requests(requests(6), config)  # run 4: only the two failures go out again
    assert len(fake_openai.batches) == 2 and fourth.summary.sent == 2 and fourth.summary.cache_hits == 4
    fake_openai.complete_batches()
    fifth = run_requests(requests(6), config)
    assert all(r.ok for r in fifth.results.values()) and fifth.summary.answered == 2
    assert fake_openai.completion_calls == 8  # 6 + 2 batch lines, never a row answered twice


def test_one_run_can_wait_for_its_batch(fake_openai, openai_config):
    fake_openai.batch_polls_before_done = 1  # the second poll finds it done
    config = replace(openai_config, batch=True, batch_wait_s=5.0, batch_poll_s=0.05)
    report = run_requests(requests(3), config)
    assert all(r.ok for r in report.results.values()) and report.summary.pending_batches == []
    assert state_files(config) == []


def test_batch_budget_submits_only_what_fits(fake_openai, openai_config):
    config = replace(openai_config, batch=True, max_requests=2)
    report = run_requests(requests(5), config)
    assert report.summary.failures == {t.BATCH_PENDING: 2, t.BUDGET: 3} and report.summary.budget_stopped
    batch = next(iter(fake_openai.batches.values()))
    assert len(fake_openai.files[batch["input_file_id"]]["content"].splitlines()) == 2


def test_a_batch_the_server_does_not_know_stays_pending_with_the_reason(fake_openai, openai_config):
    config = replace(openai_config, batch=True)
    run_requests(requests(2), config)
    fake_openai.batches.clear()  # e.g. base_url now points at another server
    report = run_requests(requests(2), config)
    assert report.summary.failures == {t.BATCH_PENDING: 2}
    assert "could not be polled" in report.results["r0"].detail and len(state_files(config)) == 1
    assert len(fake_openai.batches) == 0  # its rows are not submitted twice
