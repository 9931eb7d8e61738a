"""Throughput of the translate stage as a whole (``translate_file``), beyond the LLM layer's own benchmark.

What this adds to ``bench_llm_throughput.py``: prompt rendering, answer parsing, the structure
checks, chrF / entity alignment and the JSONL writes, i.e. everything the stage does around
``run_requests``.

1. Online: the openai backend against the fake server (its own process) with injected latency.
   Target (issue 4): at concurrency C and latency L, at least 80% of the ideal C / L rows/s.
2. Replay: ``backend: replay`` over a cache holding a correct answer (the sample's reference
   translation) for every row, so every row is rendered, hashed, parsed, checked and written.
   Target (issue 4): more than 5,000 rows/s. Measured twice: without references (the case at
   scale: the paper's data has none) and with them (chrF and entity alignment on every row,
   which sacrebleu's chrF dominates).

Rows are the sample's 252 mapped ja->en rows, repeated with a counter in the text so every
prompt is distinct (identical prompts would be sent once).

    .venv/bin/python benchmarks/bench_translate.py [--online-rows 800] [--concurrency 16]
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
from translate_fakes import mapped_rows, references, write_jsonl  # noqa: E402

from configs import make, settings  # noqa: E402  (params.yaml sections with overrides)
from mmm.llm import ResponseCache, cache_key  # noqa: E402
from mmm.llm.types import Completion  # noqa: E402
from mmm.records import Sample  # noqa: E402
from mmm.translate import one_shot  # noqa: E402
from mmm.translate.run import read_source_rows, translate_file  # noqa: E402

SAMPLE = ROOT / "data" / "raw" / "sample"
SETTINGS = settings({"templates": str(ROOT / "prompts" / "translate")}, method="one_shot")


def make_rows(n: int, work: Path) -> tuple[Path, Path]:
    """``n`` distinct mapped rows and their references (same ids), written under ``work``."""
    base = mapped_rows(SAMPLE, "en")
    refs = {r["id"]: r for r in references(SAMPLE, "en")}
    rows, ref_rows = [], []
    for i in range(n):
        row, ref = base[i % len(base)], refs[base[i % len(base)]["id"]]
        text, task = row["input"].rsplit("/", 1)
        ref_text, _ = ref["input"].rsplit("/", 1)
        new_id = f"{row['id']}-{i}"
        rows.append({**row, "id": new_id, "input": f"{text}（{i}）/{task}"})
        ref_rows.append({**ref, "id": new_id, "input": f"{ref_text} ({i})/{task}"})
    return write_jsonl(work / "rows.jsonl", rows), write_jsonl(work / "refs.jsonl", ref_rows)


def bench_online(rows: int, concurrency: int, latency: float, work: Path) -> dict:
    source, refs = make_rows(rows, work)
    with ServerProcess(latency) as served:
        os.environ.setdefault("OPENAI_API_KEY", "bench-not-a-secret")
        config = make("llm", backend="openai", model="bench", api="completions", base_url=served.base_url,
                           cache_dir=str(work / "cache-online"), concurrency=concurrency, max_retries=0, progress=False)
        started = time.perf_counter()
        metrics = translate_file(source, "en", work / "out.jsonl", work / "failed.jsonl", SETTINGS, config,
                                 references=refs)
        elapsed = time.perf_counter() - started
    server = served.stats
    ideal = concurrency / latency
    return {"rows": rows, "concurrency": concurrency, "latency_s": latency, "wall_s": round(elapsed, 2),
            "rows_per_s": round(rows / elapsed, 1), "ideal_rows_per_s": ideal,
            "fraction_of_ideal": round(rows / elapsed / ideal, 3), "server_max_in_flight": server["max_in_flight"],
            "failed": metrics["failed"]}


def bench_replay(rows: int, work: Path) -> dict:
    source, refs = make_rows(rows, work)
    config = make("llm", backend="replay", model="bench", api="completions", cache_dir=str(work / "cache-replay"),
                       replay_from="openai", progress=False)
    sources = read_source_rows(source, "en")
    template = one_shot.load_template(sources, "en", SETTINGS)
    answers = {r["id"]: Sample.from_record(r) for r in map(json.loads, refs.read_text(encoding="utf-8").splitlines())}
    cache = ResponseCache(config.cache_dir, config.family, config.model)
    cache.put_many(
        (cache_key(config.family, config.model, request.prompt, request.system, request.params),
         Completion(f"{answers[request.id].input}\n{template.answer_output}\n{answers[request.id].output}", 300, 60, "stop"))
        for request in one_shot.build_requests(sources, template, SETTINGS)
    )
    result: dict = {"rows": rows}
    for name, references in (("without_references", None), ("with_references", refs)):
        started = time.perf_counter()
        metrics = translate_file(source, "en", work / "out.jsonl", work / "failed.jsonl", SETTINGS, config,
                                 work / "metrics.json", references)
        elapsed = time.perf_counter() - started
        assert metrics["translated"] == rows, metrics["failures"]
        result[name] = {"wall_s": round(elapsed, 2), "rows_per_s": round(rows / elapsed)}
    result["chrf"] = metrics["quality"]["all"]["chrf"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--online-rows", type=int, default=800)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--replay-rows", type=int, default=20000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "online").mkdir()
        (Path(tmp) / "replay").mkdir()
        result = {
            "online": bench_online(args.online_rows, args.concurrency, args.latency, Path(tmp) / "online"),
            "replay": bench_replay(args.replay_rows, Path(tmp) / "replay"),
        }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
