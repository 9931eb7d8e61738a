"""File-level drivers for the TCONER stages (read inputs, call the pure steps, write outputs and metrics)."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

from mmm import offline, publish, runlog
from mmm.errors import DataError, IncompleteRun
from mmm.io import read_rows, write_json, write_jsonl
from mmm.llm import LLMConfig, pending
from mmm.tconer.convert import ConversionReport, convert, load_located
from mmm.tconer.label import LabelRules, Overrides, label_rows

log = logging.getLogger(__name__)


def load_source(
    files: list, hub_id: str | None, hub_split: str, allow_network: bool, hub_revision: str | None = None
) -> tuple[list[dict], list[tuple[str, int]]]:
    """Pile-NER-type conversation records from local files and/or a hub id (e.g. Universal-NER/Pile-NER-type),
    with where each came from: ``(file, line)``, or ``(hub_id[split], row)`` for hub rows (1-based)."""
    records: list[dict] = []
    origins: list[tuple[str, int]] = []
    for path in files:
        for line, record in load_located(path):
            records.append(record)
            origins.append((str(path), line))
    if hub_id:
        offline.allow_hub(allow_network)
        import datasets

        for row, record in enumerate(datasets.load_dataset(hub_id, split=hub_split, revision=hub_revision), start=1):
            records.append(dict(record))
            origins.append((f"{hub_id}@{hub_revision}[{hub_split}]", row))
    return records, origins


def run_convert(
    records: list[dict],
    out: str | Path,
    metrics_path: str | Path,
    max_texts: int | None,
    seed: int,
    origins: list[tuple[str, int]] | None = None,
) -> dict:
    """Convert, optionally keep a seeded sample of ``max_texts`` texts (the paper translated 10,000), write outputs."""
    converted, report = convert(records, ConversionReport(), origins)
    if max_texts is not None and len(converted) > max_texts:
        keep = set(random.Random(seed).sample(range(len(converted)), max_texts))
        converted = [c for i, c in enumerate(converted) if i in keep]
    metrics = {**report.to_metrics(), "texts_written": len(converted)}
    with publish.outputs({"out": out, "metrics": metrics_path}) as paths:
        write_jsonl(paths["out"], (c.to_row() for c in converted))
        write_json(paths["metrics"], metrics)
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
    *,
    log_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Label, write OUT, FAILED and the metrics (results only), then the run log
    ``<log_dir>/<metrics stem>.json`` (LLM telemetry); raises ``IncompleteRun`` when rows are pending."""
    started = time.perf_counter()
    targets = {"out": out, "failed": failed_out, "metrics": metrics_path}
    with publish.outputs(targets, inputs=[converted, template_path, overrides_path]) as paths:
        rows = read_rows(converted, _converted_row)
        template = Path(template_path).read_text(encoding="utf-8")
        if "{text}" not in template:
            raise DataError(f"{template_path}: the template has no {{text}} placeholder")
        done = label_rows(rows, config, template, Overrides.load(overrides_path, rules), rules, max_tokens)
        write_jsonl(paths["out"], done.records)
        write_jsonl(paths["failed"], done.failed)
        write_json(paths["metrics"], done.metrics)
    metrics = done.metrics
    line = (f"tconer label: {metrics['input_rows']} texts -> {metrics['labelled']} labelled, {metrics['failed']} failed, "
            f"{metrics['pending']} pending; {done.llm.line('llm')}")
    runlog.write(log_dir, Path(metrics_path).stem, {"wall_time_s": round(time.perf_counter() - started, 3),
                                                   "llm": done.llm.to_metrics(), "summary": line})
    log.info(line)
    if done.pending:
        raise IncompleteRun(line, pending.describe(metrics["pending_reasons"], len(rows), "texts", config, [done.llm]))
    return metrics


def _converted_row(row: dict) -> dict:
    for field in ("id", "text", "pairs"):
        if field not in row:
            raise KeyError(field)
    return row
