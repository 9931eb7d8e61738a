"""Wall-clock accuracy of the LLM layer's rate limiter (``RateLimiter``), with the real clock and sleep.

The unit tests check the waits the limiter asks for with a fake clock; this measures what they
cost in real time: N concurrent ``acquire`` calls at R requests per minute must take the ideal
``(N - burst) / rate`` seconds (the first second's worth goes at once), within 10% + 50 ms of
event-loop overhead, and never less (less would mean the limit was exceeded). A shared pause
(a 429's Retry-After) must hold every worker for at least its length.

    .venv/bin/python benchmarks/bench_llm_limits.py [--acquires 300] [--rpm 6000] [--pause 0.5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mmm.llm.limits import RateLimiter  # noqa: E402


async def _burst(acquires: int, rpm: float) -> float:
    limiter = RateLimiter(requests_per_minute=rpm, tokens_per_minute=None)
    start = time.perf_counter()
    await asyncio.gather(*(limiter.acquire(1) for _ in range(acquires)))
    return time.perf_counter() - start


async def _paused(seconds: float, workers: int = 8) -> float:
    limiter = RateLimiter(None, None)
    limiter.pause(seconds)
    start = time.perf_counter()
    await asyncio.gather(*(limiter.acquire(1) for _ in range(workers)))
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--acquires", type=int, default=300)
    parser.add_argument("--rpm", type=float, default=6000.0)
    parser.add_argument("--pause", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rate = args.rpm / 60
    ideal = max(0.0, args.acquires - max(1.0, rate)) / rate
    bursts = [asyncio.run(_burst(args.acquires, args.rpm)) for _ in range(args.repeat)]
    pauses = [asyncio.run(_paused(args.pause)) for _ in range(args.repeat)]
    burst_ok = all(ideal * 0.999 <= b <= ideal * 1.1 + 0.05 for b in bursts)
    pause_ok = all(args.pause * 0.999 <= p <= args.pause * 1.1 + 0.05 for p in pauses)
    print(f"rate: {args.acquires} acquires at {args.rpm:g} rpm ({rate:g}/s): "
          f"{', '.join(f'{b:.3f}' for b in bursts)} s (median {statistics.median(bursts):.3f}), "
          f"ideal {ideal:.3f} s -> {'PASS' if burst_ok else 'FAIL'} (target: ideal to ideal x 1.1 + 0.05 s)")
    print(f"pause: 8 workers behind a {args.pause:g} s pause: {', '.join(f'{p:.3f}' for p in pauses)} s "
          f"-> {'PASS' if pause_ok else 'FAIL'} (target: pause to pause x 1.1 + 0.05 s)")
    return 0 if burst_ok and pause_ok else 1


if __name__ == "__main__":
    sys.exit(main())
