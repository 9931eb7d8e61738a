"""Benchmark the evaluator on 200,000 prediction rows (target: under 2 s of work beyond start-up).

Rows are the embedded sample's records (ja sources, en/zh references, all six MRE sub-datasets)
repeated under fresh ids, with predictions that make the usual mistakes (missing marker, empty,
dropped or extra pairs, reordering, a wrong label, runaway repetition, full-width delimiters).

Timed after imports: reading and checking the JSONL, scoring + audits + 1,000-sample bootstrap
(paper and normalized mode), writing the metrics JSON; then, apart, the Markdown and the PNG
(matplotlib's import dominates that). ``--threads 1`` pins polars to one thread (set before
polars is imported), which is the issue's "one core".

    .venv/bin/python benchmarks/bench_evaluate.py [--rows 200000] [--repeat 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "raw" / "sample"


def _sample_records() -> list[dict]:
    files = sorted(SAMPLE.glob("ja/*.jsonl")) + sorted(SAMPLE.glob("reference/*/*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]


def _mistake(rng: random.Random, output: str) -> str:
    """A prediction for ``output``: right half of the time, otherwise one typical mistake."""
    first = output.index("/")
    cut = output.index("/", first + 1) + 1  # end of "label/WORD/"
    head, word = output[:cut], output[cut:]
    pieces = [p for p in word.split(":") if p]
    roll = rng.random()
    if roll < 0.5:
        return output
    if roll < 0.6:
        return output[:first]  # label only, no marker
    if roll < 0.65:
        return ""
    if roll < 0.72:
        return head + "".join(":" + p for p in pieces[:-1])  # a pair dropped
    if roll < 0.79:
        return output + ":Other;something"  # an extra pair
    if roll < 0.84:
        return head + "".join(":" + p for p in reversed(pieces))  # reordered
    if roll < 0.9:
        return "X" + output  # wrong label
    if roll < 0.95:
        return output + (":" + pieces[0]) * 6 if pieces else output * 3  # runaway repetition
    return output.replace(":", "：").replace(";", "；")  # full-width delimiters


def generate(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    records = _sample_records()
    with open(path, "w", encoding="utf-8") as fh:
        for n in range(rows):
            record = records[n % len(records)]
            row = {**record, "id": f"{record['id']}-{n}", "prediction": _mistake(rng, record["output"])}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _timed(fn, repeat: int) -> tuple[list[float], list[float], object]:
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="POLARS_MAX_THREADS (default: polars' choice)")
    args = parser.parse_args()
    if args.threads:
        os.environ["POLARS_MAX_THREADS"] = str(args.threads)

    start = time.perf_counter()
    import polars as pl

    from mmm import config
    from mmm.evaluation import predictions, run
    from mmm.evaluation.report import write_chart, write_markdown
    from mmm.io import write_json

    evaluate = config.load(ROOT / "params.yaml").evaluate

    startup = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "predictions.jsonl"
        generate(data, args.rows)
        size_mb = data.stat().st_size / 1e6

        def whole(mode: str) -> dict:
            result = run.evaluate(predictions.read(data), evaluate.with_flags(mode=mode))
            write_json(Path(tmp) / f"metrics_{mode}.json", result)
            return result

        lines = []
        frame = None
        for name, fn in [
            ("read + check JSONL", lambda: predictions.read(data)),
            ("score + audits + bootstrap (paper)", lambda: run.evaluate(frame, evaluate)),
            ("score + audits + bootstrap (normalized)", lambda: run.evaluate(frame, evaluate.with_flags(mode="normalized"))),
            ("whole run, paper: read -> metrics JSON", lambda: whole("paper")),
            ("whole run, normalized", lambda: whole("normalized")),
        ]:
            walls, cpus, result = _timed(fn, args.repeat)
            if frame is None:
                frame = result
            lines.append(f"{name:42s} wall min {min(walls):.3f} s, median {statistics.median(walls):.3f} s; "
                         f"cpu median {statistics.median(cpus):.3f} s")
        result = whole("paper")
        walls, _, _ = _timed(lambda: write_markdown(result, Path(tmp) / "t.md", evaluate.model_name), args.repeat)
        lines.append(f"{'Table 1 Markdown':42s} wall min {min(walls):.3f} s")
        walls, _, _ = _timed(lambda: write_chart(result, Path(tmp) / "f.png", evaluate.reference), args.repeat)
        lines.append(f"{'PNG chart (first includes matplotlib import)':42s} wall max {max(walls):.3f} s, min {min(walls):.3f} s")

    threads = pl.thread_pool_size()
    print(f"bench_evaluate: {args.rows} rows ({size_mb:.0f} MB JSONL), polars threads {threads}, "
          f"start-up (imports) {startup:.2f} s, {args.repeat} repeats")
    for line in lines:
        print("  " + line)
    ja = result["metrics"]["ja"]["SCNM"]
    print(f"  sanity: ja/SCNM n={ja['n']} TL {ja['TL']:.2f} WL {ja['WL']:.2f} ALL {ja['ALL']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
