"""Translation methods compared on the sample: one_shot (the paper's prompt) vs anchored.

For each method and each translate item of params.yaml (en, zh, tconer_ja, tconer_zh), the
translate stage runs with the default local model, answering from the committed cache (only the
few prompts whose answer was empty, which the cache never stores, are generated again: the model
loads once per item and gives the same empty answer), then the filter stage's rules judge the
translated rows. Reported per item and sub-dataset:

* retention: rows kept by the filters / source rows (the issue's target: >= 90% for en and zh);
* chrF against the sample's reference translations: on the rows each method kept (``chrf``), on
  the rows both methods kept (``chrf_common``: same sentences, so the quality of the translations
  alone), and over every source row with a lost row scored as empty (``chrf_all``);
* entity match: kept entities equal to the reference's at the same pair position;
* LLM requests and tokens per kept row (every request of the method counted, cached or not).

    .venv/bin/python benchmarks/bench_translate_methods.py [--backend local|replay] [--json out.json]

Without the committed cache, ``--backend local`` generates everything: about 75 minutes for the
anchored method on 2 cores (benchmarks/README.md). ``--backend replay`` refuses any miss.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mmm import config, filters  # noqa: E402
from mmm.io import read_samples  # noqa: E402
from mmm.llm import LLMConfig  # noqa: E402
from mmm.translate import quality  # noqa: E402
from mmm.translate.run import load_references, settings_for, translate_file  # noqa: E402

PARAMS = config.load(ROOT / "params.yaml")

METHODS = ("one_shot", "anchored")


def measure(item: str, spec: config.TranslateItem, method: str, llm: LLMConfig, work: Path) -> dict[str, Any]:
    settings = settings_for(PARAMS.translate.with_flags(method=method))
    out, failed = work / f"{method}-{item}.jsonl", work / f"{method}-{item}.failed.jsonl"
    metrics = translate_file(spec.input, spec.to, out, failed, settings, llm,
                             log_dir=work / "logs", log_name=f"{method}-{item}")
    llm = json.loads((work / "logs" / f"{method}-{item}.json").read_text(encoding="utf-8"))["llm"]  # run telemetry
    kept_path = work / f"{method}-{item}.kept.jsonl"
    result = filters.filter_file(out, spec.to, kept_path, work / f"{method}-{item}.rejected.jsonl")
    sources = read_samples(spec.input)
    kept = {s.id: s for s in read_samples(kept_path)} if result.kept else {}
    requests = sum(m["requests"] for m in llm.values())
    tokens = sum(m["prompt_tokens"] + m["completion_tokens"] + m["cached_prompt_tokens"] + m["cached_completion_tokens"]
                 for m in llm.values())
    row: dict[str, Any] = {
        "item": item, "method": method, "rows": len(sources), "translated": metrics["translated"],
        "kept": result.kept, "retention": round(result.kept / len(sources), 4) if sources else None,
        "requests_per_kept_row": round(requests / result.kept, 2) if result.kept else None,
        "tokens_per_kept_row": round(tokens / result.kept) if result.kept else None,
        "translate_failures": metrics["failures"], "filter_rejections": result.stats.get("reasons", {}),
        "by_dataset": {},
    }
    refs = load_references(spec.references, spec.to) if spec.references else None
    scores = quality.score(kept, refs, sources) if refs else {}
    per_dataset: dict[str, list[int]] = {}
    for sample in sources:
        cell = per_dataset.setdefault(sample.dataset, [0, 0])
        cell[0] += 1
        cell[1] += sample.id in kept
    for dataset, (total, count) in per_dataset.items():
        entry: dict[str, Any] = {"rows": total, "kept": count, "retention": round(count / total, 4)}
        if dataset in scores:
            entry.update(chrf=scores[dataset]["chrf"], chrf_all=scores[dataset]["chrf_with_failures"],
                         entity_match=scores[dataset]["entity_match"])
        row["by_dataset"][dataset] = entry
    if scores:
        overall = scores[quality.ALL]
        row.update(chrf=overall["chrf"], chrf_all=overall["chrf_with_failures"], entity_match=overall["entity_match"])
    row["_kept"], row["_refs"] = kept, refs  # for the common-rows score; dropped before printing
    return row


def score_common_rows(rows: list[dict[str, Any]]) -> None:
    """``chrf_common``: each method's chrF on the rows every method kept (per item, with references)."""
    by_item: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_item.setdefault(row["item"], []).append(row)
    for group in by_item.values():
        refs = group[0]["_refs"]
        common = set.intersection(*(set(r["_kept"]) for r in group))
        for row in group:
            row["common_rows"] = len(common)
            if refs and common:
                picked = {i: row["_kept"][i] for i in common}
                row["chrf_common"] = quality.score(picked, refs, list(picked.values()))[quality.ALL]["chrf"]
    for row in rows:
        del row["_kept"], row["_refs"]


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| item | method | kept / rows | retention | chrF (kept) | chrF (rows both kept) | chrF (all rows) | "
             "entity match | requests / kept | tokens / kept |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        common = f"{r['chrf_common']} ({r['common_rows']})" if "chrf_common" in r else "-"
        lines.append(f"| {r['item']} | {r['method']} | {r['kept']} / {r['rows']} | {r['retention']:.1%} | {r.get('chrf', '-')} | "
                     f"{common} | {r.get('chrf_all', '-')} | {r.get('entity_match', '-')} | {r['requests_per_kept_row']} | "
                     f"{r['tokens_per_kept_row']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="local", choices=["local", "replay"])
    parser.add_argument("--items", nargs="*", default=None, help="translate items (default: all of params.yaml)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    items = PARAMS.translate.items
    llm = PARAMS.llm.with_flags(backend=args.backend, progress=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for item in args.items or list(items):
            for method in METHODS:
                rows.append(measure(item, items[item], method, llm, Path(tmp)))
    score_common_rows(rows)
    print(table(rows))
    print()
    for r in rows:
        cells = ", ".join(f"{d} {c['kept']}/{c['rows']}" + (f" chrF {c['chrf']}" if c.get("chrf") is not None else "")
                          for d, c in r["by_dataset"].items())
        print(f"{r['item']} {r['method']}: {cells}")
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
