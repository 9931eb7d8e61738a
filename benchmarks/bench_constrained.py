"""Cost of constrained decoding (``predict.constrained``) on CPU (target: the processor < 20% of generation time).

Generates the same test rows at one batch, free (``off``) and constrained (``grammar``/``schema``),
and times the grammar processor's own calls inside the constrained runs, so the share is measured
directly and does not depend on the two modes writing answers of different lengths. The
vocabulary is decoded once per tokenizer before the timed runs (its cost is printed separately).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_constrained.py --model models/oiellm --rows 16 --batch-size 16
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pick_rows(test_file: Path, rows: int) -> list[dict]:
    """``rows`` test records spread over the file (so over languages and sub-datasets)."""
    records = [json.loads(line) for line in test_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    step = max(1, len(records) // rows)
    return records[::step][:rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "oiellm")
    parser.add_argument("--test", type=Path, default=ROOT / "data/processed/split/test.jsonl")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--modes", default="off,schema,grammar")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from mmm.modeling import constrained
    from mmm.predict import Generator, constraints_for

    torch.set_num_threads(args.threads)
    if not (args.model / "config.json").exists():
        sys.exit(f"no model at {args.model}")
    rows = pick_rows(args.test, args.rows)
    generator = Generator(args.model, device="cpu")
    start = time.perf_counter()
    constrained.vocab_bytes(generator.tokenizer, len(generator.tokenizer), generator.settings.stop_strings,
                            sorted(generator.engine.eos_ids))
    vocab_s = time.perf_counter() - start

    spent = {"s": 0.0, "calls": 0}
    original = constrained.MMMGrammarProcessor.__call__

    def timed(self, input_ids, scores):  # type: ignore[no-untyped-def]
        begin = time.perf_counter()
        try:
            return original(self, input_ids, scores)
        finally:
            spent["s"] += time.perf_counter() - begin
            spent["calls"] += 1

    constrained.MMMGrammarProcessor.__call__ = timed
    report = {"model": str(args.model), "rows": len(rows), "batch_size": args.batch_size, "threads": args.threads,
              "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "vocab_decode_s": round(vocab_s, 2),
              "load_before": os.getloadavg()[0], "modes": {}}
    for mode in args.modes.split(","):
        spent.update(s=0.0, calls=0)
        specs = constraints_for(rows, mode, generator.target)
        begin = time.perf_counter()
        out = generator.generate([r["input"] for r in rows], args.max_new_tokens, args.batch_size, constraints=specs)
        total = time.perf_counter() - begin
        tokens = sum(g.new_tokens for g in out)
        report["modes"][mode] = {
            "generate_s": round(total, 2), "new_tokens": tokens, "processor_calls": spent["calls"],
            "processor_s": round(spent["s"], 3), "processor_share": round(spent["s"] / total, 4),
            "ms_per_step": round(1000 * total / max(spent["calls"], 1), 1) if spent["calls"] else None,
            "processor_ms_per_step": round(1000 * spent["s"] / max(spent["calls"], 1), 2),
            "finish": {f: sum(g.finish == f for g in out) for f in ("eos", "newline", "max_new_tokens")},
            "load_after": os.getloadavg()[0],
        }
        print(mode, json.dumps(report["modes"][mode]), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
