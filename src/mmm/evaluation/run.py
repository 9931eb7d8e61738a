"""Evaluate a predictions table: micro P/R/F1 per language and sub-dataset, intervals, audits.

The result is one JSON-ready dict whose ``metrics[lang][dataset]`` holds the Table 1 figures
(``TL``, ``WL``, ``ALL`` F1 in percent) and ``n``, so ``dvc metrics diff`` lines them up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from mmm import registry
from mmm.config import EvalConfig
from mmm.errors import DataError
from mmm.evaluation import audits, bootstrap, predictions, scoring
from mmm.evaluation.algorithm1 import TARGET_LEVELS, TARGETS, Counts, micro_prf

DIGITS = 4


def _ordered(keys: set[str], order: tuple[str, ...]) -> list[str]:
    return [key for key in order if key in keys]


def _figures(
    distinct: np.ndarray, frequency: np.ndarray, levels: tuple[str, ...], config: EvalConfig, key: str
) -> dict[str, Any]:
    """Table 1 figures for one sub-dataset from its distinct ``(k, levels, 3)`` row counts and their frequencies."""
    totals = (distinct * frequency[:, None, None]).sum(axis=0)
    prf = {level: micro_prf(Counts(*map(int, totals[i]))) for i, level in enumerate(levels)}
    entry: dict[str, Any] = {"n": int(frequency.sum())}
    entry.update({level: round(prf[level][2], DIGITS) for level in levels})
    entry["precision"] = {level: round(prf[level][0], DIGITS) for level in levels}
    entry["recall"] = {level: round(prf[level][1], DIGITS) for level in levels}
    if config.bootstrap_samples:
        seed = bootstrap.seed_for(config.seed, key)
        intervals = bootstrap.f1_intervals(distinct, frequency, config.bootstrap_samples, seed, config.confidence)
        entry["ci"] = {
            level: {"low": round(low, DIGITS), "high": round(high, DIGITS)}
            for level, (low, high) in zip(levels, intervals)
        }
    return entry


def resolve_target(requested: str, declared: list[str]) -> str:
    """The target to score: the one requested, or with ``auto`` the one the rows declare (else joint)."""
    if len(declared) > 1:
        raise DataError(f"the predictions mix training targets ({', '.join(declared)}); evaluate each model apart")
    if declared and declared[0] not in TARGETS:
        expected = ", ".join(TARGETS)
        raise DataError(f"the predictions declare an unknown target {declared[0]!r}; expected one of {expected}")
    if requested == "auto":
        return declared[0] if declared else "joint"
    if declared and declared[0] != requested:
        raise DataError(f"target {requested} was requested but the predictions come from a {declared[0]} model")
    return requested


def frame_target(frame: pl.DataFrame, config: EvalConfig) -> str:
    """``resolve_target`` for a table from ``predictions.read``."""
    return resolve_target(config.target, predictions.declared_targets(frame) if "target" in frame.columns else [])


def level_columns(levels: tuple[str, ...]) -> list[str]:
    """The count columns of ``levels``: ``TL_tp, TL_gen, TL_real, …`` in level order."""
    return [f"{level}_{what}" for level in levels for what in ("tp", "gen", "real")]


def row_counts(
    frame: pl.DataFrame, config: EvalConfig, target: str, audit: bool = False
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Per-row counts (``row, id, lang, dataset`` and every level's ``tp, gen, real``), and with
    ``audit`` the per-row audit flags (else ``None``)."""
    counts_parts, flag_parts = [], []
    for dataset, instruct, part in scoring.partitions(frame):
        parsed = scoring.parse(part, instruct, scoring.keep_whole(dataset), config.mode)
        counts_parts.append(scoring.counts(parsed))
        if audit:
            flag_parts.append(audits.flags(part, parsed, dataset, instruct, target, config.repeat_min))
    counts = frame.select("row", "id", "lang", "dataset").join(pl.concat(counts_parts), on="row")
    return counts, pl.concat(flag_parts) if audit else None


def evaluate(frame: pl.DataFrame, config: EvalConfig) -> dict[str, Any]:
    """Score a table from ``predictions.read``; pure (no I/O)."""
    target = frame_target(frame, config)
    levels = TARGET_LEVELS[target]
    columns = level_columns(levels)
    counts, flags = row_counts(frame, config, target, audit=True)
    assert flags is not None
    # Rows with the same counts are interchangeable for micro F1 and for the bootstrap.
    distinct = counts.group_by("lang", "dataset", *columns).len()
    groups = distinct.partition_by(["lang", "dataset"], as_dict=True)
    present: dict[str, set[str]] = {}
    for lang, dataset in groups:
        present.setdefault(lang, set()).add(dataset)

    metrics: dict[str, dict[str, Any]] = {}
    for lang in _ordered(set(present), registry.LANGS):
        metrics[lang] = {}
        for dataset in _ordered(present[lang], registry.DATASETS):
            group = groups[(lang, dataset)].sort(columns)  # group_by order is arbitrary; the draws need a fixed one
            table = group.select(columns).to_numpy().reshape(-1, len(levels), 3).astype(np.int64)
            frequency = group["len"].to_numpy().astype(np.int64)
            metrics[lang][dataset] = _figures(table, frequency, levels, config, f"{lang}/{dataset}")
    macro = {
        lang: {"datasets": len(by_dataset)}
        | {level: round(float(np.mean([m[level] for m in by_dataset.values()])), DIGITS) for level in levels}
        for lang, by_dataset in metrics.items()
    }
    return {
        "mode": config.mode,
        "target": target,
        "rows": frame.height,
        "metrics": metrics,
        "macro": macro,
        "audits": audits.summarize(frame, flags, config.max_examples),
        "bootstrap": {"samples": config.bootstrap_samples, "seed": config.seed, "confidence": config.confidence},
    }


def evaluate_file(path: str | Path, config: EvalConfig) -> dict[str, Any]:
    """Read and score a predictions JSONL (raises ``InputError`` naming every malformed line)."""
    result = evaluate(predictions.read(path), config)
    return {"predictions": Path(path).name, **result}


def evaluate_and_report(cfg: EvalConfig) -> dict[str, Any]:
    """Score ``cfg.predictions``; publish the metrics JSON, Table 1 (Markdown), the F1 chart (PNG) and the
    F1 as plot data (a folder for ``dvc plots``) as one set."""
    from mmm import publish
    from mmm.evaluation.plotdata import write_f1
    from mmm.evaluation.report import write_chart, write_markdown
    from mmm.io import write_json

    targets = {"out": cfg.out, "report": cfg.report, "plot": cfg.plot, "plot_data": cfg.plot_data}
    with publish.outputs(targets, inputs=[cfg.predictions], folders=["plot_data"]) as out:
        result = evaluate_file(cfg.predictions, cfg)
        write_json(out["out"], result)
        write_markdown(result, out["report"], cfg.model_name)
        write_chart(result, out["plot"], cfg.reference)
        write_f1(out["plot_data"], result)
    return result
