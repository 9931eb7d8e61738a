"""Benchmark the filter: 200,000 generated translated rows, timed after start-up (imports, regex build).

Reports two numbers (wall time; CPU time too, since the machine may be shared): the three rules
on an in-memory frame (``filters.with_reasons``) and the whole ``filter_file`` (read JSONL, judge, write kept/rejected and metrics). Target: < 2 s.

    .venv/bin/python benchmarks/bench_filter.py [--rows 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

from mmm import filters, registry

WORDS_EN = "the station city company new market river report game team music north small old people".split()
WORDS_ZH = list("东京站广州劳动市场公司新闻报告比赛音乐北方小老人的了在是")


def _text(rng: random.Random, lang: str, words: int) -> str:
    if lang == "zh":
        return "".join(rng.choice(WORDS_ZH) for _ in range(words * 2)) + "。"
    return " ".join(rng.choice(WORDS_EN) for _ in range(words)).capitalize() + "."


def generate(rows: int, seed: int = 7) -> list[dict]:
    """Rows shaped like translation output: mostly valid, ~25% breaking one rule or another."""
    rng = random.Random(seed)
    out = []
    for n in range(rows):
        lang = rng.choice(["en", "zh"])
        dataset = rng.choice(registry.DATASETS[:6])
        kind = registry.kind(dataset)
        instruct = rng.choice(kind.instructions)
        text = _text(rng, lang, rng.randint(12, 40))
        spans = [text[i : i + rng.randint(2, 8)] for i in sorted(rng.sample(range(len(text) - 8), 3))]
        label = kind.text_labels[lang][0]
        if kind.word_level == "triple":
            word = f":{spans[0]};{kind.word_labels[lang][0]};{spans[1]}"
        else:
            chosen = spans[: rng.randint(1, 3)]
            word = "".join(f":{kind.word_labels[lang][i % 2]};{span}" for i, span in enumerate(chosen))
        roll = rng.random()
        if roll < 0.08:
            text += "駅です"
        elif roll < 0.16:
            word += ":" + kind.word_labels[lang][0] + ";" + "missing entity"
        elif roll < 0.24:
            word = word.replace(":", "", 1)
        output = f"{label}/{instruct}/{word}"
        out.append({"id": f"b{n}", "lang": lang, "dataset": dataset, "input": f"{text}/{instruct}", "output": output})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    rows = generate(args.rows)
    frame = pl.DataFrame(rows)
    filters.residual_pattern("zh")  # start-up: build the GB2312 class once
    filters.with_reasons(frame.head(100))

    rules, whole, rules_cpu, whole_cpu = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        for lang in ("en", "zh"):
            part = [r for r in rows if r["lang"] == lang]
            lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part)
            (tmp_dir / f"{lang}.jsonl").write_text(lines, encoding="utf-8")
        for _ in range(args.repeat):
            start, cpu = time.perf_counter(), time.process_time()
            judged = filters.with_reasons(frame)
            rules.append(time.perf_counter() - start)
            rules_cpu.append(time.process_time() - cpu)
            start, cpu = time.perf_counter(), time.process_time()
            for lang in ("en", "zh"):
                outs = (tmp_dir / "k.jsonl", tmp_dir / "r.jsonl", tmp_dir / "m.json")
                filters.filter_file(tmp_dir / f"{lang}.jsonl", lang, *outs)
            whole.append(time.perf_counter() - start)
            whole_cpu.append(time.process_time() - cpu)
    rejected = judged.filter(pl.col("reasons").list.len() > 0).height
    print(f"rows: {args.rows} ({rejected} rejected by the rules)")
    print(
        f"rules only (with_reasons): best {min(rules):.2f} s, median {statistics.median(rules):.2f} s wall "
        f"(CPU {statistics.median(rules_cpu):.2f} s, all threads) over {args.repeat} runs"
    )
    median = statistics.median(whole)
    print(
        f"filter_file (read+judge+write, en and zh files): best {min(whole):.2f} s, median {median:.2f} s wall "
        f"(CPU {statistics.median(whole_cpu):.2f} s)"
    )


if __name__ == "__main__":
    main()
