"""``run_requests``: answer a list of prompts from the cache first, then from the configured backend.

Every request id gets exactly one ``LLMResult``: an answer (cached or fresh) or a failure with a
reason. Identical prompts are sent once. Answers reach the cache as they arrive, so a rerun
after a crash, a budget stop or pending batches sends only what is still missing.

The first SIGINT/SIGTERM during an ``openai`` run drains it (``drain.py``): no new request or retry
starts, the requests in flight finish and are cached, then ``KeyboardInterrupt``/``Terminated`` is
raised, so a rerun re-sends no answered prompt; a second signal abandons the requests in flight.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mmm.llm import batch_api, openai_api
from mmm.llm import types as t
from mmm.llm.cache import ResponseCache, cache_key
from mmm.llm.config import LLMConfig, LLMConfigError, api_key_from_env
from mmm.llm.drain import Drain
from mmm.llm.limits import Budget, RateLimiter, Reservation, estimate_tokens
from mmm.llm.local import LocalModel, LogitsHook
from mmm.llm.types import Completion, Failure, LLMRequest, LLMResult

log = logging.getLogger(__name__)


RETRY_AFTER_CEILING_S = 120.0


class ReplayMissError(LLMConfigError):
    """``backend: replay`` and some prompts have no cached answer."""


@dataclass
class RunSummary:
    """What a run did (telemetry); ``to_metrics()`` is what stages write to the run log (``mmm.runlog``)."""

    backend: str
    model: str
    family: str
    requests: int = 0  # request ids in
    unique_prompts: int = 0  # distinct cache keys among them
    cache_hits: int = 0  # requests answered from the cache
    sent: int = 0  # distinct prompts sent to the backend (or submitted in a batch)
    attempts: int = 0  # HTTP calls including retries (openai online)
    retries: int = 0
    answered: int = 0  # requests answered by the backend in this run
    failed: int = 0  # requests without an answer, by reason in ``failures``
    failures: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0  # of this run's fresh answers
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0  # of the answers served from the cache
    cached_completion_tokens: int = 0
    cost_usd: float = 0.0  # estimated, this run's fresh answers, from the params price table
    budget_stopped: bool = False
    stopped_by: str | None = None  # the signal that stopped the run (the call then raises, see the module doc)
    pending_batches: list[str] = field(default_factory=list)
    rate_limit_wait_s: float = 0.0
    wall_time_s: float = 0.0

    def to_metrics(self) -> dict[str, Any]:
        metrics = asdict(self)
        metrics["failures"] = dict(sorted(self.failures.items()))
        metrics["cost_usd"] = round(self.cost_usd, 6)
        metrics["wall_time_s"] = round(self.wall_time_s, 3)
        metrics["rate_limit_wait_s"] = round(self.rate_limit_wait_s, 3)
        metrics["requests_per_s"] = round(self.sent / self.wall_time_s, 2) if self.wall_time_s else 0.0
        return metrics

    def line(self, desc: str = "llm") -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items()))
        parts = [
            f"{desc}: {self.requests} requests",
            f"{self.cache_hits} cached",
            f"{self.sent} sent",
            f"{self.answered} answered",
            f"{self.failed} failed" + (f" ({reasons})" if reasons else ""),
            f"{self.prompt_tokens}+{self.completion_tokens} tokens",
            f"~${self.cost_usd:.4f}",
            f"{self.wall_time_s:.1f}s",
        ]
        if self.budget_stopped:
            parts.append("stopped by budget; rerun to continue")
        if self.pending_batches:
            parts.append(f"{len(self.pending_batches)} batch(es) pending; rerun to collect")
        if self.stopped_by:
            parts.append(f"stopped by {self.stopped_by}; rerun to continue")
        return ", ".join(parts)


@dataclass
class RunReport:
    results: dict[str, LLMResult]
    summary: RunSummary

    def failed(self) -> list[LLMResult]:
        return [r for r in self.results.values() if not r.ok]


def run_requests(
    requests: Sequence[LLMRequest],
    config: LLMConfig,
    desc: str = "llm",
    *,
    logits_hook: LogitsHook | None = None,
    budget: Budget | None = None,
    cache_as: str | None = None,
    cache: ResponseCache | None = None,
) -> RunReport:
    """Answer every request; see the module docstring. Raises ``LLMConfigError`` before any work
    when the run cannot succeed (missing key, missing model, replay misses).

    ``budget``: share one ``new_budget(config)`` between the calls of a multi-step job, so
    ``max_requests``/``max_cost_usd`` bound the job, not each call; None: a budget of its own.

    ``cache_as``: the model identity answers are cached under (key and shard) instead of ``config.model``, e.g. the
    sha256 of the weights a server serves, whose name is then only how requests address it.

    ``cache``: a shard the caller opened (``ResponseCache(config.cache_dir, config.family, identity)``) and reuses
    across the calls of a long job; the caller then compacts it once at the end, instead of every call loading and
    rewriting the whole shard (quadratic in the job's size). None: this call opens and compacts its own.

    A SIGINT/SIGTERM that stopped an ``openai`` run is raised again (``KeyboardInterrupt``,
    ``mmm.errors.Terminated``) once the requests in flight are drained and the summary is logged.
    """
    started = time.perf_counter()
    _require_unique_ids(requests)
    summary = RunSummary(backend=config.backend, model=config.model, family=config.family, requests=len(requests))
    constrained = logits_hook is not None and config.family.startswith("local")
    identity = cache_as or config.model
    owned = cache is None
    if cache is None:
        cache = ResponseCache(config.cache_dir, config.family, identity)
    elif (cache.family, cache.model) != (config.family, identity):
        raise ValueError(f"run_requests: the cache given is {cache.path}, not the shard of {config.family}/{identity}")

    keys: dict[str, str] = {}
    misses: dict[str, LLMRequest] = {}  # key -> first request with that key
    results: dict[str, LLMResult] = {}
    for request in requests:
        constraint = {"hook": logits_hook.name, "terms": list(request.required_terms)} if constrained else None
        key = cache_key(config.family, identity, request.prompt, request.system, request.params, constraint)
        keys[request.id] = key
        hit = cache.get(key)
        if hit is not None and not hit.text.strip():  # a greedy local model's empty answer: it stays empty
            results[request.id] = LLMResult(request.id, None, t.EMPTY, True, 0, 0, detail=t.LOCAL_EMPTY_DETAIL)
            summary.cache_hits += 1
            summary.failed += 1
            summary.failures[t.EMPTY] = summary.failures.get(t.EMPTY, 0) + 1
        elif hit is not None:
            results[request.id] = _result(request.id, hit, cached=True)
            summary.cache_hits += 1
            summary.cached_prompt_tokens += hit.prompt_tokens
            summary.cached_completion_tokens += hit.completion_tokens
        else:
            misses.setdefault(key, request)
    summary.unique_prompts = len(set(keys.values()))

    outcomes: dict[str, Completion | Failure] = {}
    stopped: Drain | None = None
    if misses:
        work = list(misses.items())
        if config.backend == "replay":
            missing = sum(1 for r in requests if keys[r.id] in misses)
            raise ReplayMissError(
                f"replay: {missing} of {len(requests)} prompts are not in the cache at {cache.path} "
                f"({config.family}, model {identity}); run with --backend local or openai to fill it"
            )
        if config.backend == "openai":
            api_key_from_env()  # a clear error before anything is sent
        run = _Run(config, cache, summary, desc, total=len(work), budget=budget or new_budget(config))
        try:
            if config.backend == "local":
                outcomes = run.local(work, logits_hook)
            elif config.batch:
                outcomes = asyncio.run(run.batch(work))
            else:
                outcomes = asyncio.run(run.online(work))
        finally:
            run.close()
            if owned and cache.added:
                cache.compact()
        if run.drain.stopping:
            stopped = run.drain
            summary.stopped_by = stopped.name

    for request in requests:
        if request.id in results:
            continue
        outcome = outcomes.get(keys[request.id]) or Failure(t.ABORTED, "the run ended before this prompt was sent")
        if isinstance(outcome, Completion):
            results[request.id] = _result(request.id, outcome, cached=False)
            summary.answered += 1
        else:
            results[request.id] = LLMResult(request.id, None, outcome.reason, False, 0, 0, detail=outcome.detail or None)
            summary.failed += 1
            summary.failures[outcome.reason] = summary.failures.get(outcome.reason, 0) + 1
    summary.wall_time_s = time.perf_counter() - started
    log.info(summary.line(desc))
    if stopped is not None:
        raise stopped.exception()
    return RunReport(results={r.id: results[r.id] for r in requests}, summary=summary)


class _Run:
    """State shared by one run's workers: cache, budget, counters, progress bar."""

    def __init__(self, config: LLMConfig, cache: ResponseCache, summary: RunSummary, desc: str, total: int,
                 budget: Budget):
        self.config = config
        self.cache = cache
        self.summary = summary
        self.budget = budget
        self.failed_so_far = 0
        self.batch_problems: dict[str, str] = {}
        self.bar = _progress(config, desc, total)
        self.on_wire: set[str] = set()  # keys whose HTTP call is under way (online)
        self.drain = Drain(self._in_flight)

    def _in_flight(self) -> str:
        if self.config.batch:
            return "the Batch API call under way, if any (running batches stay pending for the next run)"
        return f"{len(self.on_wire)} request(s) in flight"

    def close(self) -> None:
        self.summary.budget_stopped = self.budget.stopped
        if self.bar is not None:
            self.bar.close()

    def record(self, key: str, completion: Completion, cost: float) -> None:
        self.cache.put(key, completion)
        self.summary.prompt_tokens += completion.prompt_tokens
        self.summary.completion_tokens += completion.completion_tokens
        self.summary.cost_usd += cost

    def tick(self, n: int = 1, failed: int = 0) -> None:
        self.failed_so_far += failed
        if self.bar is not None:
            if failed:
                self.bar.set_postfix(failed=self.failed_so_far, refresh=False)
            self.bar.update(n)

    def leftover(self, work: Sequence[tuple[str, LLMRequest]], outcomes: dict, fatal: Failure | None) -> None:
        for key, _ in work:
            if key not in outcomes:
                if self.drain.stopping:
                    outcomes[key] = self._stopped(key)
                elif fatal is not None:
                    outcomes[key] = Failure(t.ABORTED, f"not sent: the run stopped after {fatal.reason}: {fatal.detail}")
                else:
                    outcomes[key] = Failure(t.BUDGET, _budget_detail(self.config))

    def _stopped(self, key: str) -> Failure:
        """Why ``key`` has no answer after a signal stopped the run."""
        name = self.drain.name
        if key in self.on_wire:  # its task was cancelled mid-request by a second signal
            return Failure(t.ABORTED, f"abandoned in flight: stopped by a second signal after {name}; rerun to continue")
        return Failure(t.ABORTED, f"not sent: stopped by {name}; rerun to continue")

    # Local ---------------------------------------------------------------------------------------

    def local(self, work: list[tuple[str, LLMRequest]], hook: LogitsHook | None) -> dict[str, Completion | Failure]:
        outcomes: dict[str, Completion | Failure] = {}
        groups: dict[str, list[tuple[str, LLMRequest]]] = {}
        for key, request in work:
            groups.setdefault(json.dumps(request.params.key_fields(), sort_keys=True), []).append((key, request))
        model: LocalModel | None = None
        size = self.config.local_batch_size
        for group in groups.values():
            group.sort(key=lambda item: len(item[1].completion_prompt()), reverse=True)  # little padding
            for start in range(0, len(group), size):
                chunk = [item for item in group[start : start + size] if self._reserve(item[1])]
                if not chunk:
                    break
                model = model or LocalModel(self.config, hook)
                self.summary.sent += len(chunk)
                answers = model.generate([r for _, r in chunk], seed=self.config.seed + start)
                good = [(key, a) for (key, _), a in zip(chunk, answers) if isinstance(a, Completion)]
                empty = [(key, EMPTY_ANSWER) for (key, _), a in zip(chunk, answers)
                         if isinstance(a, Failure) and a.reason == t.EMPTY and chunk[0][1].params.temperature == 0]
                self.cache.put_many(good + empty)  # greedy: an empty answer is the answer, so it is kept too
                for (key, _), answer in zip(chunk, answers):
                    outcomes[key] = answer
                    if isinstance(answer, Completion):
                        self.summary.prompt_tokens += answer.prompt_tokens
                        self.summary.completion_tokens += answer.completion_tokens
                        self.summary.cost_usd += self.budget.cost(answer.prompt_tokens, answer.completion_tokens)
                self.tick(len(chunk), failed=len(chunk) - len(good))
                if self.budget.stopped:
                    break
        self.leftover(work, outcomes, None)
        return outcomes

    def _reserve(self, request: LLMRequest) -> bool:
        return self.budget.try_reserve(estimate_tokens(request.completion_prompt()), request.params.max_tokens) is not None

    # OpenAI online -------------------------------------------------------------------------------

    async def online(self, work: list[tuple[str, LLMRequest]]) -> dict[str, Completion | Failure]:
        client = openai_api.make_client(self.config)
        limiter = RateLimiter(self.config.requests_per_minute, self.config.tokens_per_minute)
        queue = deque(work)
        outcomes: dict[str, Completion | Failure] = {}
        fatal: list[Failure] = []

        async def worker() -> None:
            while queue and not fatal and not self.drain.stopping:
                key, request = queue.popleft()
                estimate = estimate_tokens(request.completion_prompt())
                reservation = self.budget.try_reserve(estimate, request.params.max_tokens)
                if reservation is None:
                    queue.appendleft((key, request))
                    return
                outcome = await self._attempts(client, limiter, key, request, estimate)
                self._settle(key, outcome, reservation)
                outcomes[key] = outcome
                if isinstance(outcome, Failure) and outcome.reason in openai_api.FATAL:
                    fatal.append(outcome)

        with self.drain.handling():
            try:
                await self.drain.gather(*(worker() for _ in range(min(self.config.concurrency, len(work)))))
            finally:
                await client.close()
                self.summary.rate_limit_wait_s = limiter.waited_s
        self.leftover(work, outcomes, fatal[0] if fatal else None)
        return outcomes

    async def _attempts(
        self, client: Any, limiter: RateLimiter, key: str, request: LLMRequest, estimate: int
    ) -> Completion | Failure:
        """Send ``request`` until answered, not retryable or out of retries; after a signal
        (``self.drain``) no attempt starts: the last failure stands, or ABORTED if none was sent."""
        reserved_tokens = estimate + request.params.max_tokens
        last: Failure | None = None
        for attempt in range(self.config.max_retries + 1):
            if not await self.drain.unless_stopped(limiter.acquire(reserved_tokens)) or self.drain.stopping:
                return self._not_retried(last) if last else self._stopped(key)
            if attempt == 0:
                self.summary.sent += 1
            self.summary.attempts += 1
            self.on_wire.add(key)
            outcome = await openai_api.complete(client, request, self.config)
            self.on_wire.discard(key)  # not reached when a second signal cancels the call: see _stopped
            if isinstance(outcome, Completion):
                limiter.settle(reserved_tokens, outcome.prompt_tokens + outcome.completion_tokens)
                return outcome
            if not outcome.retryable or attempt == self.config.max_retries:
                return outcome
            if self.drain.stopping:
                return self._not_retried(outcome)
            last = outcome
            self.summary.retries += 1
            delay = self._backoff(attempt, outcome.retry_after)
            if outcome.reason == t.RATE_LIMIT:
                limiter.pause(delay)  # everyone waits, not just this worker
            if not await self.drain.unless_stopped(asyncio.sleep(delay)):
                return self._not_retried(outcome)
        raise AssertionError("unreachable")

    def _not_retried(self, failure: Failure) -> Failure:
        return Failure(failure.reason, f"{failure.detail}; not retried: stopped by {self.drain.name}", failure.retry_after)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter; a server's Retry-After wins when it gives one (up to 2 min)."""
        cap = self.config.backoff_max_s
        if retry_after is not None:
            return min(retry_after, max(cap, RETRY_AFTER_CEILING_S)) * random.uniform(1.0, 1.2)
        return min(cap, self.config.backoff_base_s * 2**attempt) * random.uniform(0.5, 1.0)

    def _settle(self, key: str, outcome: Completion | Failure, reservation: Reservation) -> None:
        if isinstance(outcome, Completion):
            cost = self.budget.settle(reservation, outcome.prompt_tokens, outcome.completion_tokens)
            self.record(key, outcome, cost)
            self.tick()
        else:
            self.budget.settle(reservation, 0, 0)
            self.tick(failed=1)

    # OpenAI Batch API ----------------------------------------------------------------------------

    async def batch(self, work: list[tuple[str, LLMRequest]]) -> dict[str, Completion | Failure]:
        client = openai_api.make_client(self.config)
        wanted = {key for key, _ in work}
        outcomes: dict[str, Completion | Failure] = {}
        running: dict[str, tuple[Any, batch_api.BatchState]] = {}
        stop = self.drain  # after a signal: the call under way ends, no other starts, running batches stay pending

        async def rounds() -> None:
            for path, state in batch_api.load_states(self.config.cache_dir, self.config.family, self.config.model):
                if stop.stopping:
                    running[state.batch_id] = (path, state)
                else:
                    await self._collect(client, path, state, wanted, outcomes, running)
            covered = {key for _, state in running.values() for key in state.keys}
            to_send = [(k, r) for k, r in work if k not in outcomes and k not in covered and k not in self.cache]
            accepted = [(k, r) for k, r in to_send if self._reserve(r)] if not stop.stopping else []
            if accepted:
                path, state = await batch_api.submit(client, accepted, self.config)
                running[state.batch_id] = (path, state)
                self.summary.sent += len(accepted)
            deadline = time.monotonic() + self.config.batch_wait_s
            while running and time.monotonic() < deadline:
                wait = min(self.config.batch_poll_s, max(0.0, deadline - time.monotonic()))
                if not await stop.unless_stopped(asyncio.sleep(wait)):
                    return
                for path, state in list(running.values()):
                    if stop.stopping:
                        return
                    del running[state.batch_id]
                    await self._collect(client, path, state, wanted, outcomes, running)

        with stop.handling():
            try:
                await stop.gather(rounds())
            finally:
                await client.close()
        for _, state in running.values():
            self.summary.pending_batches.append(state.batch_id)
            problem = self.batch_problems.get(state.batch_id)
            why = f"could not be polled: {problem}" if problem else "still running"
            for key in state.keys:
                if key in wanted and key not in outcomes:
                    outcomes[key] = Failure(t.BATCH_PENDING, f"in batch {state.batch_id}, {why}; rerun to collect")
        for key, _ in work:  # answered meanwhile by another run sharing the cache
            if key not in outcomes and key in self.cache:
                outcomes[key] = self.cache.get(key)  # type: ignore[assignment]
        self.leftover(work, outcomes, None)
        return outcomes

    async def _collect(self, client: Any, path: Any, state: batch_api.BatchState, wanted: set[str],
                       outcomes: dict, running: dict) -> None:
        import openai

        try:
            status, results = await batch_api.poll(client, state)
        except openai.APIError as exc:  # keep the state: nothing is lost, a later run polls again
            problem = openai_api.redact(f"{type(exc).__name__}: {exc}")[:200]
            log.warning("batch %s could not be polled (%s); state kept in %s", state.batch_id, problem, path)
            self.batch_problems[state.batch_id] = problem
            running[state.batch_id] = (path, state)
            return
        self.batch_problems.pop(state.batch_id, None)
        if status in batch_api.RUNNING:
            running[state.batch_id] = (path, state)
            return
        good = [(k, o) for k, o in results.items() if isinstance(o, Completion)]
        for key, completion in good:
            self.record(key, completion, self.budget.cost(completion.prompt_tokens, completion.completion_tokens))
        for key, outcome in results.items():
            if key in wanted:
                outcomes[key] = outcome
        self.tick(sum(1 for k in results if k in wanted), failed=sum(1 for k, o in results.items()
                                                                   if k in wanted and isinstance(o, Failure)))
        path.unlink(missing_ok=True)
        log.info("batch %s %s: %d answered, %d failed", state.batch_id, status, len(good), len(results) - len(good))


def new_budget(config: LLMConfig) -> Budget:
    """The spending ceilings of ``config`` (``max_requests``, ``max_cost_usd``), nothing spent yet."""
    price_factor = config.batch_price_factor if (config.batch and config.backend == "openai") else 1.0
    price = config.price()
    if config.max_cost_usd is not None and price is None and config.backend == "openai":
        raise LLMConfigError(
            f"llm.max_cost_usd is set but llm.prices has no entry for model {config.model!r}; "
            "add its input/output USD per 1M tokens, or drop max_cost_usd"
        )
    return Budget(config.max_requests, config.max_cost_usd, price, price_factor)


EMPTY_ANSWER = Completion(text="", prompt_tokens=0, completion_tokens=0, finish_reason="stop")


def _result(request_id: str, completion: Completion, cached: bool) -> LLMResult:
    return LLMResult(
        id=request_id,
        text=completion.text,
        error=None,
        cached=cached,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        finish_reason=completion.finish_reason,
        stop_reason=completion.stop_reason,
    )


def _require_unique_ids(requests: Sequence[LLMRequest]) -> None:
    counts = Counter(r.id for r in requests)
    duplicates = [i for i, n in counts.items() if n > 1]
    if duplicates:
        shown = ", ".join(duplicates[:10]) + (" ..." if len(duplicates) > 10 else "")
        raise ValueError(f"{len(duplicates)} request id(s) occur more than once: {shown}")


def budget_limits(config: LLMConfig) -> str:
    """The run's spending ceilings as the user set them, e.g. ``llm.max_requests=5``."""
    limits = []
    if config.max_requests is not None:
        limits.append(f"llm.max_requests={config.max_requests}")
    if config.max_cost_usd is not None:
        limits.append(f"llm.max_cost_usd={config.max_cost_usd}")
    return ", ".join(limits)


def _budget_detail(config: LLMConfig) -> str:
    return f"not sent: the run's budget ({budget_limits(config)}) was reached; rerun to continue"


def _progress(config: LLMConfig, desc: str, total: int) -> Any:
    if not config.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"{desc} ({config.backend})", unit="req", dynamic_ncols=True, smoothing=0.1)
