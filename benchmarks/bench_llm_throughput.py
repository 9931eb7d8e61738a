"""Throughput of the LLM layer (issue 4, "Done when").

1. Online: ``run_requests`` with the openai backend (real client, real HTTP) against the fake
   OpenAI-compatible server with injected latency. Target: at concurrency C and latency L,
   at least 80% of the ideal C / L requests per second.
2. Cache replay: ``run_requests`` with the replay backend over a cache of N answers (key
   hashing, shard load, result assembly). Target: more than 5,000 rows/s.

The fake server runs in its own process, as a real server would, so its request handling does
not compete with the client for the GIL.

    .venv/bin/python benchmarks/bench_llm_throughput.py [--requests 800] [--concurrency 16]
        [--latency 0.2] [--replay-rows 20000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from fake_openai import ServerProcess  # noqa: E402

from configs import make  # noqa: E402  (params.yaml sections with overrides)
from mmm.llm import GenParams, LLMRequest, ResponseCache, cache_key, run_requests  # noqa: E402
from mmm.llm.types import Completion  # noqa: E402


def bench_online(requests: int, concurrency: int, latency: float, cache_dir: Path) -> dict:
    with ServerProcess(latency) as served:
        os.environ.setdefault("OPENAI_API_KEY", "bench-not-a-secret")
        import openai  # noqa: F401  (a one-off ~1 s import is not throughput; warm it up first)
        config = make("llm", backend="openai", model="bench", api="chat", base_url=served.base_url, cache_dir=str(cache_dir),
                           concurrency=concurrency, progress=False, max_retries=0)
        batch = [LLMRequest(f"r{i}", f"benchmark prompt number {i}", GenParams(max_tokens=16)) for i in range(requests)]
        start = time.perf_counter()
        report = run_requests(batch, config, desc="bench")
        elapsed = time.perf_counter() - start
    server = served.stats
    answered = report.summary.answered
    ideal = concurrency / latency
    rate = answered / elapsed
    return {"requests": requests, "answered": answered, "concurrency": concurrency, "latency_s": latency,
            "seconds": round(elapsed, 2), "requests_per_s": round(rate, 1), "ideal_per_s": round(ideal, 1),
            "fraction_of_ideal": round(rate / ideal, 3), "server_max_in_flight": server["max_in_flight"],
            "pass": answered == requests and rate >= 0.8 * ideal}


def bench_replay(rows: int, cache_dir: Path) -> dict:
    config = make("llm", backend="replay", replay_from="local", model="bench", cache_dir=str(cache_dir), progress=False)
    params = GenParams(max_tokens=128, stop=("\n\n",))
    batch = [LLMRequest(f"r{i}", f"テキスト {i}: 東京の会社が新しい製品を発表した。/NER", params) for i in range(rows)]
    cache = ResponseCache(cache_dir, config.family, config.model)
    cache.put_many(
        (cache_key(config.family, config.model, r.prompt, r.system, r.params),
         Completion(f"answer to {r.id}: The company in Tokyo announced a product./NER", 40, 20, "stop"))
        for r in batch
    )
    start = time.perf_counter()
    report = run_requests(batch, config, desc="bench-replay")
    elapsed = time.perf_counter() - start
    assert report.summary.cache_hits == rows, report.summary.line()
    rate = rows / elapsed
    return {"rows": rows, "seconds": round(elapsed, 3), "rows_per_s": round(rate), "pass": rate > 5000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--replay-rows", type=int, default=20000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        online = bench_online(args.requests, args.concurrency, args.latency, Path(tmp) / "online")
        replay = bench_replay(args.replay_rows, Path(tmp) / "replay")
    results = {"online": online, "replay": replay}
    print(f"online: {online['answered']} requests in {online['seconds']} s = {online['requests_per_s']}/s "
          f"({online['fraction_of_ideal']:.0%} of ideal {online['ideal_per_s']}/s at concurrency "
          f"{online['concurrency']}, latency {online['latency_s']} s; server saw {online['server_max_in_flight']} "
          f"in flight) -> {'PASS' if online['pass'] else 'FAIL'} (target >= 80%)")
    print(f"replay: {replay['rows']} rows in {replay['seconds']} s = {replay['rows_per_s']} rows/s "
          f"-> {'PASS' if replay['pass'] else 'FAIL'} (target > 5000)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if online["pass"] and replay["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
