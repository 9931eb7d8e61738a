"""How many correct answers a ``translate.max_tokens`` rule would cut, counted with the provider's tokenizer.

The sample's reference translations stand for correct one-shot answers (the translated input line,
the template's output marker, the translated output line). For every direction each answer is
counted with the encoding of ``--model`` (``mmm.llm.tokens``: OpenAI's files, bundled offline) and
compared with the cap the rule gives its source row (``TokenCap.for_sample``). Prints, per direction,
the largest tokens-per-source-character ratio seen and the answers the rule would truncate.

    .venv/bin/python benchmarks/bench_answer_budget.py [--params params.yaml] [--model gpt-3.5-turbo]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmm import config
from mmm.llm.tokens import Tokenizer, encoding_for_model
from mmm.records import Sample
from mmm.translate import template as templates
from mmm.io import read_records

ROOT = Path(__file__).resolve().parent.parent
DIRECTIONS = (("ja", "en"), ("ja", "zh"), ("en", "ja"), ("en", "zh"))


def samples(folder: Path) -> dict[str, Sample]:
    return {r["id"]: Sample.from_record(r) for path in sorted(folder.glob("*.jsonl")) for r in read_records(path)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--model", default="gpt-3.5-turbo")
    args = parser.parse_args()
    params = config.load(args.params)
    cap = params.translate.max_tokens
    encoding = encoding_for_model(args.model) or "o200k_base"
    tokenizer = Tokenizer(encoding, True, "completions")
    sample_dir = params.ingest.sample_dir
    langs = {"ja": samples(sample_dir / "ja"), "en": samples(sample_dir / "reference" / "en"),
             "zh": samples(sample_dir / "reference" / "zh")}
    print(f"model {args.model} ({encoding}); rule: per_source_char {cap.per_source_char}, by_direction "
          f"{cap.by_direction}, min {cap.minimum}, max {cap.maximum}, step {cap.step}")
    for source, target in DIRECTIONS:
        marker = templates.load(templates.template_path(params.translate.templates, source, target)).answer_output
        rows = [(langs[source][i], langs[target][i]) for i in sorted(langs[source]) if i in langs[target]]
        worst, cut, longest = 0.0, 0, 0
        for src, tgt in rows:
            tokens = tokenizer.count(f"{tgt.input}\n{marker}\n{tgt.output}")
            chars = len(src.input) + len(src.output)
            worst = max(worst, tokens / chars)
            longest = max(longest, tokens)
            cut += tokens > cap.for_sample(src, target)
        print(f"{source}-{target}: {len(rows)} answers, longest {longest} tokens, max {worst:.3f} tokens per source char, "
              f"{cut} would be truncated ({100.0 * cut / len(rows):.1f}%)")


if __name__ == "__main__":
    main()
