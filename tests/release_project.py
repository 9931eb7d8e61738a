"""A small synthetic input set for the release_data stage: split files, a passed gate and the metrics the card reads.

The split has SCNM and TCREE rows of the sample in three languages and TCONER stand-ins in English; zh/TCREE has no
test rows, so a configuration with an empty split is covered. The metrics are the keys the card reads, with numbers
that differ from each other so a value read from the wrong place shows.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tiny_model import sample_records, sample_tconer

from mmm import config, funnel, registry
from mmm.validation import gate

TRAIN_PER_CELL = 3
CELLS = {("en", "SCNM"): 5, ("ja", "SCNM"): 6, ("zh", "SCNM"): 4, ("en", "TCREE"): 4, ("ja", "TCREE"): 5,
         ("zh", "TCREE"): 3, ("en", "TCONER"): 7}


def split_rows() -> dict[str, list[dict]]:
    """train: the first three rows of each cell in ``CELLS``; test: the rest (zh/TCREE: none)."""
    by_cell: dict[tuple[str, str], list[dict]] = {}
    for row in sample_records() + sample_tconer(langs=("en",)):
        by_cell.setdefault((row["lang"], row["dataset"]), []).append(row)
    picked = {cell: by_cell[cell][:size] for cell, size in CELLS.items()}
    return {"train": [r for rows in picked.values() for r in rows[:TRAIN_PER_CELL]],
            "test": [r for rows in picked.values() for r in rows[TRAIN_PER_CELL:]]}


def expected_counts() -> dict[str, dict[str, dict[str, int]]]:
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for (lang, dataset), size in CELLS.items():
        counts.setdefault(lang, {})[dataset] = {"train": TRAIN_PER_CELL, "test": size - TRAIN_PER_CELL}
    return counts


def metrics() -> dict[str, dict]:
    """Metrics file stem -> content (only what the card and the funnel read)."""
    counts = expected_counts()
    table2 = {}
    for lang in registry.LANGS:
        row = {ds: sum(counts.get(lang, {}).get(ds, {}).values()) for ds in registry.DATASETS}
        table2[lang] = {**row, "total": sum(row.values())}

    def translate(direction: str, translated: int, failures: dict) -> dict:
        return {"direction": direction, "method": "anchored", "input_rows": translated + sum(failures.values()),
                "translated": translated, "failures": failures}

    def filtered(kept: int, reasons: dict, waived: dict | None = None) -> dict:
        return {"input": kept + sum(reasons.values()), "kept": kept, "reasons": reasons, "waived": waived or {}}

    return {
        "ingest": {"source": "sample", "sources": {"ja": {"total": 11}}},
        "tconer_convert": {"texts_written": 9, "pairs_kept": 31, "problems": {"answer_not_json": 1, "duplicate_pair": 0}},
        "tconer_label": {"labelled": 8, "failed": 1, "failures": {"overlong_label": 1}, "distinct_labels": 5,
                         "human_changed_labels": 2, "human_rescued_rows": 0, "human_dropped_rows": 1},
        "label_map": {"input_rows": 11, "source": "ja", "langs": {
            "en": {"rows": 11, "distinct_text_labels": 4, "distinct_word_labels": 6},
            "zh": {"rows": 11, "distinct_text_labels": 4, "distinct_word_labels": 6}}},
        "translate_en": translate("ja-en", 10, {"llm_empty": 1}),
        "translate_zh": translate("ja-zh", 8, {"entity_empty": 2, "llm_empty": 1}),
        "translate_tconer_ja": translate("en-ja", 7, {"label_untranslated": 1}),
        "translate_tconer_zh": translate("en-zh", 6, {"untranslated": 2}),
        "filter_ja": filtered(11, {"residual_japanese": 0, "entity_not_in_text": 0, "bad_format": 0}),
        "filter_en": filtered(9, {"residual_japanese": 1, "entity_not_in_text": 0, "bad_format": 0}),
        "filter_zh": filtered(7, {"residual_japanese": 0, "entity_not_in_text": 1, "bad_format": 0},
                              {"residual_japanese": 3}),
        "filter_tconer_en": filtered(7, {"residual_japanese": 0, "entity_not_in_text": 1, "bad_format": 0}),
        "filter_tconer_ja": filtered(0, {"residual_japanese": 0, "entity_not_in_text": 7, "bad_format": 0}),
        "filter_tconer_zh": filtered(0, {"residual_japanese": 0, "entity_not_in_text": 6, "bad_format": 0}),
        "dataset": {"table2": table2},
        "split": {"leakage": {"mode": "drop", "test_text_in_train": 0},
                  "cross_lingual": {"test_ids_trained_in_other_lang": 2}, "cells": expected_counts()},
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def seed(project: Path, root: Path) -> config.Params:
    """Write the repository's params and the synthetic inputs into ``project``; returns the params loaded there."""
    if not (project / "params.yaml").exists():
        shutil.copy(root / "params.yaml", project / "params.yaml")
    params = config.load(project / "params.yaml")
    for name, rows in split_rows().items():
        write_jsonl(getattr(params.split, name), rows)
    (project / "metrics").mkdir(exist_ok=True)
    for name, data in metrics().items():
        (project / "metrics" / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    funnel.run(params, params.funnel.out)
    record = params.validation.gate
    gate.write(record, True, gate.record(record, [params.split.train, params.split.test]))
    return params
