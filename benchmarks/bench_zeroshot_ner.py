"""Zero-shot open NER with user-given label sets on CrossNER AI, CrossNER music and MIT restaurant.

The three files are UniversalNER's test sets in the Pile-NER-type conversation format (one record per
(text, type) question; research-only licence), read at run time from ``../shared/data/pile-ner-format``
beside the repository and never copied into it. Per data set: group the records by text
(``mmm.zeroshot.read_pile_ner``), take a seeded subsample of texts, and run the OIELLM once per text through
``mmm extract``'s code path (``mmm.predict.extract_many``) as ``TEXT/NER`` with dataset TCONER (open-domain
text label), the data set's whole label set as ``labels`` and ``constrained: schema`` (then ``off`` for
comparison: free answers, no label set). Scores are entity-level micro P/R/F1 over (type, entity) sets per
text, with entities compared exactly up to whitespace (``exact``) and after UniversalNER's own normalisation
(``uniner``: lower case, punctuation and articles removed); types are compared case-insensitively.

Mode ``scnm`` asks the question the default model was trained for: ``TEXT/NER`` as SCNM in English with
``constrained: schema`` and SCNM's own closed inventory (no label set given), scored after mapping both
sides to common types (``mmm.zeroshot.as_scnm``: person, location, organization (SCNM's three merged),
product, event; gold types without a counterpart are not scored). It is the real-text proxy of word-level
F1 with SCNM types; use it on the CrossNER sets (MIT restaurant has hardly any of these types). SCNM labels are
re-picked by the folder's label prototypes, as ``mmm extract`` does by default; ``+generated`` (``scnm+generated``)
keeps the labels as generated (``--no-label-prototypes``), and ``+rescore`` (``schema+rescore``, ``scnm+rescore``)
re-picks them by the joint probability of label and entity (``mmm extract --rescore-labels``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_zeroshot_ner.py --model models/oiellm --texts 48

Prints one JSON line per (data set, mode) as it goes, then the whole report; ``--predictions FILE`` also
keeps each answer (outside the repository: they quote the licensed texts).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "pile-ner-format"
SETS = ("CrossNER_AI", "CrossNER_music", "mit-restaurant")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "oiellm")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--texts", type=int, default=48, help="texts per data set (seeded subsample)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", default="schema,off")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: the model folder's (128)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--predictions", type=Path, default=None, help="JSONL of every answer (keep it out of the repo)")
    args = parser.parse_args()

    import torch

    from mmm import zeroshot
    from mmm.predict import Request, extract_many, load_generator

    torch.set_num_threads(args.threads)
    if not args.data.is_dir():
        sys.exit(f"no data folder {args.data}")
    generator = load_generator(args.model, device="cpu")
    report: dict = {"model": str(args.model), "texts_per_set": args.texts, "seed": args.seed,
                    "batch_size": args.batch_size, "threads": args.threads,
                    "max_new_tokens": args.max_new_tokens or generator.settings.max_new_tokens,
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "sets": {}}
    kept = []
    for name in args.sets.split(","):
        gold = zeroshot.read_pile_ner(args.data / f"{name}.json")
        items = zeroshot.subsample(gold.items, args.texts, args.seed)
        entry = report["sets"][name] = {
            "records": gold.records, "texts": len(gold.items), "sampled": len(items), "types": list(gold.types),
            "gold_entities": sum(len(g.pairs()) for g in items),
            "texts_over_max_pieces": sum(len(g.pairs()) > 12 for g in items), "modes": {}}
        for mode in args.modes.split(","):
            base, _, extra = mode.partition("+")
            scnm = base == "scnm"
            labels = gold.types if base not in ("off", "scnm") else None
            requests = [Request(g.text, "NER", "SCNM" if scnm else "TCONER", labels, g.id) for g in items]
            start = time.perf_counter()
            results = extract_many(requests, generator, args.max_new_tokens, "schema" if scnm else base, "en",
                                   args.batch_size, rescore_labels=extra == "rescore",
                                   label_prototypes=extra != "generated")
            seconds = time.perf_counter() - start
            predicted = [None if r.pairs is None else r.pairs for r in results]
            scorer = zeroshot.score_as_scnm if scnm else zeroshot.score
            allowed = set(zeroshot.SCNM_TYPES) if scnm else set(gold.types)
            entry["modes"][mode] = {
                **{key: scorer(items, predicted, norm).metrics() for key, norm in zeroshot.NORMALISERS.items()},
                "parsed": sum(r.error is None for r in results),
                "finish": {f: sum(r.finish == f for r in results) for f in ("eos", "newline", "max_new_tokens")},
                "types_outside_label_set": sum(p[0] not in allowed for r in results for p in r.pairs or ()),
                "generate_s": round(seconds, 1), "load_after": os.getloadavg()[0],
            }
            print(json.dumps({"set": name, "mode": mode, **entry["modes"][mode]}), flush=True)
            kept += [{"set": name, "mode": mode, "id": g.id, "raw": r.raw, "error": r.error} for g, r in zip(items, results)]
    if args.predictions:
        args.predictions.write_text("".join(json.dumps(k, ensure_ascii=False) + "\n" for k in kept), encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
