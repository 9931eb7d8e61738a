"""Rate limits and the spending budget for API backends.

``RateLimiter`` keeps a run under the provider's requests-per-minute and tokens-per-minute
limits (so it gets few 429s in the first place) and makes every worker wait when the server
answers 429 with ``Retry-After``. ``Budget`` is the hard per-run ceiling on requests and on
estimated cost: it reserves the worst case (prompt estimate + ``max_tokens``) before a request is
sent, so concurrent requests can never overshoot, and settles to the real usage afterwards.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mmm.llm.config import Price


def estimate_tokens(text: str) -> int:
    """A deliberately high token estimate for limits and budgets (no tokenizer needed).

    UTF-8 bytes / 3 overestimates English (about 4 bytes per token) and is close for Japanese
    and Chinese (3 bytes per character, about one token each), so limits err on the safe side.
    """
    return max(1, math.ceil(len(text.encode("utf-8")) / 3))


class TokenBucket:
    """Refills at ``per_minute / 60`` per second, holds at most one second's worth.

    A take waits until the bucket holds the amount, or is full when the amount is larger than
    the bucket; it may then overdraw, and later takes wait off the debt. So one request larger
    than the bucket goes through instead of blocking forever, and the long-run rate still never
    exceeds the limit.
    """

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)  # at most one second of burst
        self.level = self.capacity
        self.clock = clock
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self, amount: float = 1.0) -> float:
        """Seconds until taking ``amount`` is allowed."""
        self._refill()
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        self._refill()
        self.level -= amount

    def give_back(self, amount: float) -> None:
        self._refill()
        self.level = min(self.capacity, self.level + amount)


class RateLimiter:
    """rpm + tpm buckets and a shared pause after 429s; one instance per run, used by all workers.

    ``clock`` and ``sleep`` are injectable so tests can check the waits it asks for without
    waiting (real timing is measured in ``benchmarks/bench_llm_limits.py``).
    """

    def __init__(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ):
        self.requests = TokenBucket(requests_per_minute, clock) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, clock) if tokens_per_minute else None
        self.clock = clock
        self.sleep = sleep
        self.paused_until = 0.0
        self._lock = asyncio.Lock()
        self.waited_s = 0.0

    async def acquire(self, tokens: int) -> None:
        async with self._lock:  # first come, first served: no worker starves behind later ones
            while True:
                delay = max(
                    self.paused_until - self.clock(),
                    self.requests.wait_time(1) if self.requests else 0.0,
                    self.tokens.wait_time(tokens) if self.tokens else 0.0,
                )
                if delay <= 0:
                    break
                self.waited_s += delay
                await self.sleep(delay)
            if self.requests:
                self.requests.take(1)
            if self.tokens:
                self.tokens.take(tokens)

    def settle(self, estimated: int, actual: int) -> None:
        """Return the tokens a request reserved but did not use."""
        if self.tokens and actual < estimated:
            self.tokens.give_back(estimated - actual)

    def pause(self, seconds: float) -> None:
        """Hold every worker back (the server said Retry-After)."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)


@dataclass
class Reservation:
    cost_usd: float


class Budget:
    """Per-run ceilings. ``try_reserve`` refuses once a ceiling would be crossed, and from then on."""

    def __init__(
        self,
        max_requests: int | None,
        max_cost_usd: float | None,
        price: Price | None,
        price_factor: float = 1.0,
    ):
        self.max_requests = max_requests
        self.max_cost_usd = max_cost_usd
        self.price = price
        self.factor = price_factor
        self.requests = 0
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self.stopped = False

    def try_reserve(self, prompt_tokens_estimate: int, max_tokens: int) -> Reservation | None:
        if self.stopped:
            return None
        if self.max_requests is not None and self.requests >= self.max_requests:
            self.stopped = True
            return None
        worst = self.cost(prompt_tokens_estimate, max_tokens)
        if self.max_cost_usd is not None and self.spent_usd + self.reserved_usd + worst > self.max_cost_usd:
            self.stopped = True
            return None
        self.requests += 1
        self.reserved_usd += worst
        return Reservation(worst)

    def settle(self, reservation: Reservation, prompt_tokens: int, completion_tokens: int) -> float:
        """Replace the reservation by the real cost; returns the real cost."""
        self.reserved_usd -= reservation.cost_usd
        actual = self.cost(prompt_tokens, completion_tokens)
        self.spent_usd += actual
        return actual

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return self.price.cost(prompt_tokens, completion_tokens, self.factor) if self.price else 0.0
