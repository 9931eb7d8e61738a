from __future__ import annotations

import asyncio

import pytest

from mmm.llm import Price
from mmm.llm.limits import Budget, RateLimiter, TokenBucket, estimate_tokens


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_at_the_rate_and_allows_one_oversized_take():
    clock = Clock()
    bucket = TokenBucket(per_minute=60, clock=clock)  # 1 per second
    assert bucket.wait_time() == 0
    bucket.take(1)
    assert bucket.wait_time() == pytest.approx(1.0, abs=1e-6)
    clock.now += 1.0
    assert bucket.wait_time() == 0
    assert TokenBucket(per_minute=60, clock=clock).wait_time(10) == 0  # full: an oversized take may go
    bucket.take(10)  # larger than the bucket: allowed once, then the debt is paid off
    assert bucket.wait_time() == pytest.approx(10.0, abs=1e-6)
    bucket.give_back(5)
    assert bucket.wait_time() == pytest.approx(5.0, abs=1e-6)


class FakeTime:
    """A clock and an async sleep that advances it instantly, recording every wait asked for."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_rate_limiter_holds_the_request_rate():
    time_ = FakeTime()
    # 16/s: binary-exact steps, so the fake clock lands exactly where the bucket holds a whole request
    limiter = RateLimiter(requests_per_minute=960, tokens_per_minute=None, clock=time_.clock, sleep=time_.sleep)

    async def burst() -> None:
        await asyncio.gather(*(limiter.acquire(1) for _ in range(30)))

    asyncio.run(burst())
    assert time_.waits == [0.0625] * 14  # 16 at once (1 s of burst), then one every 1/16 s
    assert limiter.waited_s == time_.now == 0.875


def test_rate_limiter_holds_the_token_rate_and_takes_back_unused_tokens():
    time_ = FakeTime()
    limiter = RateLimiter(None, tokens_per_minute=6000, clock=time_.clock, sleep=time_.sleep)  # 100 tokens/s

    async def two() -> None:
        await limiter.acquire(100)
        limiter.settle(estimated=100, actual=40)  # 60 unused tokens go back
        await limiter.acquire(100)

    asyncio.run(two())
    assert time_.waits == pytest.approx([0.4])  # 60 in the bucket, 40 more at 100/s


def test_rate_limiter_pause_holds_everyone():
    time_ = FakeTime()
    limiter = RateLimiter(None, None, clock=time_.clock, sleep=time_.sleep)
    limiter.pause(0.3)

    async def two() -> None:
        await asyncio.gather(limiter.acquire(1), limiter.acquire(1))

    asyncio.run(two())
    assert time_.waits == pytest.approx([0.3])  # the first waits out the pause; the second then goes at once


def test_budget_stops_at_max_requests_and_stays_stopped():
    budget = Budget(max_requests=2, max_cost_usd=None, price=None)
    assert budget.try_reserve(10, 10) and budget.try_reserve(10, 10)
    assert budget.try_reserve(10, 10) is None and budget.stopped
    assert budget.try_reserve(1, 1) is None


def test_budget_reserves_the_worst_case_so_concurrent_requests_cannot_overshoot():
    price = Price(input=1.0, output=1.0)  # $1 per 1M tokens either way
    budget = Budget(max_requests=None, max_cost_usd=0.003, price=price)
    first = budget.try_reserve(500, 500)  # worst case $0.001
    second = budget.try_reserve(500, 500)
    third = budget.try_reserve(500, 500)
    assert first and second and third
    assert budget.try_reserve(500, 500) is None  # a fourth in flight could cross $0.003
    assert budget.settle(first, 100, 50) == pytest.approx(0.00015)
    assert budget.spent_usd == pytest.approx(0.00015)


def test_token_estimate_errs_high_for_english_and_counts_cjk():
    assert estimate_tokens("The company announced a new product.") >= 8
    assert estimate_tokens("東京の会社が新製品を発表した。") >= 15
