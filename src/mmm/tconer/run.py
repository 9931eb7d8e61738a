"""File-level drivers for the TCONER stages (read inputs, call the pure steps, write outputs and metrics)."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from mmm import offline
from mmm.io import read_rows, write_json, write_jsonl
from mmm.llm import LLMConfig
from mmm.tconer.convert import ConversionReport, convert, load_conversations
from mmm.tconer.label import LabelRules, Overrides, label_rows

log = logging.getLogger(__name__)


def load_source(files: list, hub_id: str | None, hub_split: str, allow_network: bool) -> list[dict]:
    """Pile-NER-type conversation records from local files and/or a hub id (e.g. Universal-NER/Pile-NER-type)."""
    records = [r for path in files for r in load_conversations(path)]
    if hub_id:
        offline.allow_hub(allow_network)
        import datasets

        records += [dict(row) for row in datasets.load_dataset(hub_id, split=hub_split)]
    return records


def run_convert(records: list[dict], out: str | Path, metrics_path: str | Path, max_texts: int | None, seed: int) -> dict:
    """Convert, optionally keep a seeded sample of ``max_texts`` texts (the paper translated 10,000), write outputs."""
    converted, report = convert(records, ConversionReport())
    if max_texts is not None and len(converted) > max_texts:
        keep = set(random.Random(seed).sample(range(len(converted)), max_texts))
        converted = [c for i, c in enumerate(converted) if i in keep]
    write_jsonl(out, (c.to_row() for c in converted))
    metrics = {**report.to_metrics(), "texts_written": len(converted)}
    write_json(metrics_path, metrics)
    log.info("tconer convert: %d records -> %d texts, %d pairs", metrics["records"], len(converted), metrics["pairs_kept"])
    return metrics


def run_label(
    converted: str | Path,
    out: str | Path,
    failed_out: str | Path,
    metrics_path: str | Path,
    config: LLMConfig,
    template_path: str | Path,
    overrides_path: str | Path,
    rules: LabelRules,
    max_tokens: int,
) -> dict[str, Any]:
    rows = read_rows(converted, _converted_row)
    template = Path(template_path).read_text(encoding="utf-8")
    if "{text}" not in template:
        raise ValueError(f"{template_path}: the template has no {{text}} placeholder")
    records, failed, metrics = label_rows(rows, config, template, Overrides.load(overrides_path, rules), rules, max_tokens)
    write_jsonl(out, records)
    write_jsonl(failed_out, failed)
    write_json(metrics_path, metrics)
    return metrics


def _converted_row(row: dict) -> dict:
    for field in ("id", "text", "pairs"):
        if field not in row:
            raise KeyError(field)
    return row
