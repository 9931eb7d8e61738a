"""Batched vs one-by-one greedy generation on CPU (target: batched >= 4x faster).

Both modes run the same Generator over the same prompts; by default every row generates exactly
``--new-tokens`` tokens (stops suppressed), so the comparison is the same work done two ways.
``--natural`` lets rows stop at EOS/newline instead, as the predict stage does.

    .venv/bin/python benchmarks/bench_predict.py                       # models/oiellm, else the base model
    .venv/bin/python benchmarks/bench_predict.py --model models/base/gemma-3-270m --rows 16 --batch-size 8 --threads 1
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def default_model() -> Path:
    for candidate in (ROOT / "models" / "oiellm", ROOT / "models" / "base" / "gemma-3-270m"):
        if (candidate / "config.json").exists():
            return candidate
    sys.exit("no model found: pass --model DIR (models/oiellm or models/base/gemma-3-270m)")


def prompts(test_file: Path | None, rows: int) -> list[str]:
    """Test inputs if a split exists, else the embedded sample, spread over languages and sub-datasets."""
    if test_file and test_file.exists():
        records = [json.loads(line) for line in test_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        files = sorted((ROOT / "data/raw/sample/ja").glob("*.jsonl")) + sorted((ROOT / "data/raw/sample/reference").glob("*/*.jsonl"))
        records = [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    step = max(1, len(records) // rows)
    return [r["input"] for r in records[::step][:rows]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--test", type=Path, default=ROOT / "data/processed/split/test.jsonl")
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--natural", action="store_true", help="stop at EOS/newline instead of a fixed length")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()

    import torch

    from mmm.predict import Generator

    if args.threads:
        torch.set_num_threads(args.threads)
    model = args.model or default_model()
    inputs = prompts(args.test, args.rows)
    generator = Generator(model)
    minimum = 0 if args.natural else args.new_tokens
    generator.generate(inputs[:2], max_new_tokens=4, batch_size=2)  # warm-up (allocator, kernels)

    results = {}
    for name, batch_size in (("one_by_one", 1), ("batched", args.batch_size)):
        start = time.perf_counter()
        generations = generator.generate(inputs, max_new_tokens=args.new_tokens, batch_size=batch_size,
                                         min_new_tokens=minimum, stop_strings=None if args.natural else ())
        seconds = time.perf_counter() - start
        tokens = sum(g.new_tokens for g in generations)
        results[name] = {"seconds": round(seconds, 2), "rows_per_s": round(len(inputs) / seconds, 3),
                         "new_tokens": tokens, "new_tokens_per_s": round(tokens / seconds, 1),
                         "texts": [g.text for g in generations]}
    same = sum(a == b for a, b in zip(results["one_by_one"].pop("texts"), results["batched"].pop("texts")))
    report = {
        "model": str(model),
        "rows": len(inputs),
        "batch_size": args.batch_size,
        "new_tokens_per_row": "natural" if args.natural else args.new_tokens,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        **results,
        "speedup": round(results["one_by_one"]["seconds"] / results["batched"]["seconds"], 2),
        "identical_outputs": f"{same}/{len(inputs)}",
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
