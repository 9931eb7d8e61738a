"""The openai backend through the real client over real HTTP against the fake server."""

from __future__ import annotations

import json
import logging
import time

import pytest
from fake_openai import Fault

from configs import replace
from mmm.io import write_json, write_jsonl
from mmm.llm import GenParams, LLMConfigError, LLMRequest, run_requests
from mmm.llm import types as t


def requests(n: int, prefix: str = "prompt") -> list[LLMRequest]:
    return [LLMRequest(f"r{i}", f"{prefix} {i}") for i in range(n)]


def test_chat_answers_arrive_with_usage_and_the_right_request(fake_openai, openai_config, openai_env):
    fake_openai.answer = lambda prompt: f"EN[{prompt}] trailing"
    request = LLMRequest("a", "東京", GenParams(max_tokens=32, stop=(" trailing",)), system="Translate to English.")
    report = run_requests([request], openai_config)
    result = report.results["a"]
    assert (result.text, result.error, result.cached) == ("EN[東京]", None, False)
    assert result.prompt_tokens == 2 and result.completion_tokens == 1  # from the server's usage
    call = fake_openai.calls[0]
    assert (call.endpoint, call.model, call.system) == ("/v1/chat/completions", "fake-model", "Translate to English.")
    assert call.body["max_tokens"] == 32 and call.body["temperature"] == 0.0 and call.body["stop"] == [" trailing"]
    assert fake_openai.auth_headers == {f"Bearer {openai_env}"}
    assert report.summary.sent == 1 and report.summary.answered == 1


def test_completions_api_sends_one_prompt_with_the_system_text_first(fake_openai, openai_config):
    config = replace(openai_config, api="completions")
    run_requests([LLMRequest("a", "Text: 東京", system="Translate.")], config)
    assert fake_openai.calls[0].endpoint == "/v1/completions"
    assert fake_openai.calls[0].prompt == "Translate.\n\nText: 東京"


def test_the_stop_string_a_server_names_is_kept_and_replayed_from_the_cache(fake_openai, openai_config):
    config = replace(openai_config, api="completions")
    fake_openai.answer = lambda prompt: "a/NER/\njunk" if prompt == "stopped" else "ended"
    batch = [LLMRequest(p, p, GenParams(max_tokens=8, stop=("\n",))) for p in ("stopped", "ended")]
    for cached in (False, True):
        results = run_requests(batch, config).results
        assert [(r.text, r.finish_reason, r.stop_reason, r.cached) for r in results.values()] == [
            ("a/NER/", "stop", "\n", cached), ("ended", "stop", None, cached)]
    assert fake_openai.completion_calls == 2


def test_cache_as_files_answers_under_an_identity_other_than_the_served_name(fake_openai, openai_config):
    batch = requests(3)
    run_requests(batch, openai_config, cache_as="weights-sha256-aa")
    renamed = run_requests(batch, replace(openai_config, model="another-name"), cache_as="weights-sha256-aa")
    assert fake_openai.completion_calls == 3 and renamed.summary.cache_hits == 3  # the name is only an address
    run_requests(batch, openai_config, cache_as="weights-sha256-bb")
    assert fake_openai.completion_calls == 6  # other weights: nothing replayed
    shards = sorted(p.name for p in openai_config.cache_dir.glob("*.jsonl"))
    assert shards == ["openai-chat__weights-sha256-aa.jsonl", "openai-chat__weights-sha256-bb.jsonl"]


def test_a_rerun_is_served_from_the_cache_and_duplicates_are_sent_once(fake_openai, openai_config):
    batch = requests(6) + [LLMRequest("dup", "prompt 0")]
    first = run_requests(batch, openai_config)
    assert fake_openai.completion_calls == 6 and first.results["dup"].text == first.results["r0"].text
    second = run_requests(batch, openai_config)
    assert fake_openai.completion_calls == 6
    assert all(r.cached for r in second.results.values()) and second.summary.cache_hits == 7
    assert second.summary.sent == 0


def test_429_with_retry_after_is_retried_and_honoured(fake_openai, openai_config):
    fake_openai.retry_after = 0.3
    fake_openai.faults = lambda call: Fault.RATE_LIMIT if call.attempt == 1 else None
    start = time.monotonic()
    report = run_requests(requests(3), replace(openai_config, concurrency=3))
    assert all(r.ok for r in report.results.values())
    assert time.monotonic() - start >= 0.3
    assert report.summary.retries == 3 and report.summary.attempts == 6
    assert all(n == 1 for n in fake_openai.answered.values())


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault.SERVER_ERROR, t.SERVER_ERROR),
        (Fault.EMPTY, t.EMPTY),
        (Fault.TRUNCATED, t.BAD_RESPONSE),
        (Fault.DISCONNECT, t.CONNECTION),
        (Fault.RATE_LIMIT, t.RATE_LIMIT),
    ],
)
def test_persistent_faults_are_retried_a_bounded_number_of_times_then_failed(fake_openai, openai_config, fault, reason):
    fake_openai.faults = lambda call: fault if call.prompt == "prompt 1" else None
    report = run_requests(requests(3), openai_config)
    failed = report.results["r1"]
    assert (failed.text, failed.error) == (None, reason) and failed.detail
    assert report.results["r0"].ok and report.results["r2"].ok
    assert sum(1 for c in fake_openai.calls if c.prompt == "prompt 1") == openai_config.max_retries + 1
    assert report.summary.failures == {reason: 1}
    # failures are never cached: a healthy rerun sends exactly the failed row
    fake_openai.faults = None
    before = fake_openai.completion_calls
    rerun = run_requests(requests(3), openai_config)
    assert rerun.results["r1"].ok and fake_openai.completion_calls == before + 1


def test_a_hanging_server_times_out(fake_openai, openai_config):
    fake_openai.faults = lambda call: Fault.HANG
    config = replace(openai_config, timeout_s=0.3, max_retries=1)
    start = time.monotonic()
    report = run_requests(requests(1), config)
    assert report.results["r0"].error == t.TIMEOUT
    assert 0.6 <= time.monotonic() - start < 10  # two 0.3 s timeouts, not the client's 600 s default
    assert report.summary.attempts == 2


def test_a_bad_request_is_not_retried(fake_openai, openai_config):
    fake_openai.faults = lambda call: Fault.BAD_REQUEST
    report = run_requests(requests(2), openai_config)
    assert {r.error for r in report.results.values()} == {t.CLIENT_ERROR}
    assert fake_openai.completion_calls == 2


def test_an_auth_failure_stops_the_run_and_the_echoed_key_is_redacted(fake_openai, openai_config, openai_env):
    fake_openai.faults = lambda call: Fault.UNAUTHORIZED
    report = run_requests(requests(20), replace(openai_config, concurrency=2))
    reasons = [r.error for r in report.results.values()]
    assert reasons.count(t.AUTH) <= 2 and reasons.count(t.ABORTED) >= 18
    assert fake_openai.completion_calls <= 2  # not 20 x (retries + 1)
    details = " ".join(r.detail or "" for r in report.results.values())
    assert "Incorrect API key provided" in details and openai_env not in details


def test_requests_really_run_concurrently(fake_openai, openai_config):
    run_requests([LLMRequest("warm", "warm up")], openai_config)  # imports and connections out of the way
    fake_openai.latency = 0.2
    start = time.monotonic()
    report = run_requests(requests(16), replace(openai_config, concurrency=8))
    elapsed = time.monotonic() - start
    assert report.summary.answered == 16
    assert fake_openai.max_in_flight == 8  # never more than asked, and really that many
    assert elapsed < 16 * 0.2 / 2  # sequential would take 3.2 s


def test_max_requests_stops_cleanly_and_reruns_continue(fake_openai, openai_config):
    config = replace(openai_config, max_requests=4, concurrency=2)
    answered_per_run = []
    for _ in range(3):
        report = run_requests(requests(10), config)
        answered_per_run.append(report.summary.answered)
        pending = [r for r in report.results.values() if r.error == t.BUDGET]
        assert all("rerun" in r.detail for r in pending)
    assert answered_per_run == [4, 4, 2]
    assert fake_openai.completion_calls == 10 and all(n == 1 for n in fake_openai.answered.values())
    assert report.summary.cache_hits == 8 and not report.summary.budget_stopped


def test_max_cost_is_a_hard_ceiling_on_the_estimate(fake_openai, openai_config):
    # $1 per 1M tokens. Each request reserves its worst case, (1 estimated prompt token + 100 max
    # tokens) = $101e-6, and really costs $4e-6 (the fake's usage: 2 + 2 tokens). With a $120e-6
    # ceiling a request may start while spent + 101e-6 <= 120e-6: five of them.
    config = replace(openai_config, prices={"fake-model": {"input": 1.0, "output": 1.0}}, max_cost_usd=120e-6,
                     concurrency=1)
    batch = [LLMRequest(f"r{i}", f"p{i}", GenParams(max_tokens=100)) for i in range(10)]
    report = run_requests(batch, config)
    assert report.summary.budget_stopped and report.summary.answered == 5
    assert report.summary.cost_usd == pytest.approx(20e-6)
    assert report.summary.failures == {t.BUDGET: 5} and fake_openai.completion_calls == 5


def test_concurrent_requests_cannot_overshoot_the_cost_ceiling(fake_openai, openai_config):
    fake_openai.latency = 0.05
    config = replace(openai_config, prices={"fake-model": {"input": 1.0, "output": 1.0}}, max_cost_usd=350e-6,
                     concurrency=8)
    batch = [LLMRequest(f"r{i}", f"p{i}", GenParams(max_tokens=100)) for i in range(40)]
    report = run_requests(batch, config)
    assert report.summary.budget_stopped and fake_openai.max_in_flight <= 3  # 3 x 101e-6 fit, 4 do not
    assert report.summary.cost_usd <= 350e-6


def test_max_cost_without_a_price_is_refused_before_sending(fake_openai, openai_config):
    with pytest.raises(LLMConfigError, match="prices"):
        run_requests(requests(2), replace(openai_config, max_cost_usd=1.0))
    assert fake_openai.calls == []


def test_a_missing_key_is_a_clear_error_before_any_request(fake_openai, openai_config, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(LLMConfigError, match="OPENAI_API_KEY"):
        run_requests(requests(3), openai_config)
    assert fake_openai.calls == []


def test_a_fully_cached_run_needs_no_key(fake_openai, openai_config, monkeypatch):
    run_requests(requests(3), openai_config)
    monkeypatch.delenv("OPENAI_API_KEY")
    assert all(r.cached for r in run_requests(requests(3), openai_config).results.values())


def test_the_key_never_reaches_cache_metrics_results_or_logs(fake_openai, openai_config, openai_env, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    fake_openai.faults = lambda call: Fault.UNAUTHORIZED if call.prompt == "prompt 5" else None
    report = run_requests(requests(6), replace(openai_config, concurrency=1))
    # what a stage writes: metrics and the rows with their failure details
    write_json(tmp_path / "metrics.json", report.summary.to_metrics())
    write_jsonl(tmp_path / "results.jsonl", (r.__dict__ for r in report.results.values()))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".jsonl" and "llm-cache" in str(p) for p in files)
    for path in files:
        assert openai_env not in path.read_text(encoding="utf-8", errors="replace"), path
    assert openai_env not in caplog.text
    assert openai_env not in json.dumps(openai_config.public_dict())


def test_requests_per_minute_is_never_exceeded(fake_openai, openai_config):
    run_requests([LLMRequest("warm", "warm up")], openai_config)  # imports and connections out of the way
    config = replace(openai_config, concurrency=16, requests_per_minute=1200)  # 20/s, one second of burst
    report = run_requests(requests(60), config)
    assert report.summary.answered == 60
    starts = sorted(c.at for c in fake_openai.calls if c.prompt != "warm up")
    # 20 go at once, the other 40 at 20/s: the last starts ~2 s after the first (unlimited, the 60 go
    # out within ~0.2 s). Server arrival stamps bunch up by a few hundred ms on a loaded box, hence 1.5.
    assert starts[-1] - starts[0] >= 1.5
