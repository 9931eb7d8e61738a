"""Tell two models apart: a paired bootstrap of the F1 difference A - B on the same rows.

Both tables must hold predictions for the same ``(lang, dataset, id)`` rows with the same gold
``input`` and ``output``. Each resample draws rows once and scores both models on it: the
multinomial trick of ``bootstrap`` over the distinct *joint* count vectors (A's and B's counts
of one row side by side). Each sub-dataset has its own seeded stream (as in ``evaluate``); a
language's macro difference averages the sub-datasets' resampled differences (a stratified bootstrap).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from mmm import registry
from mmm.config import EvalConfig
from mmm.errors import DataError
from mmm.evaluation import bootstrap, predictions
from mmm.evaluation.algorithm1 import LEVELS, TARGET_LEVELS, Counts, micro_prf
from mmm.evaluation.run import DIGITS, frame_target, level_columns, row_counts

KEYS: tuple[str, ...] = ("lang", "dataset", "id")
EXAMPLES = 5  # ids named in a mismatch error


def check_same_rows(frame_a: pl.DataFrame, frame_b: pl.DataFrame) -> None:
    """Raise ``DataError`` unless both tables have the same keyed rows with the same gold input and output."""
    gold = [*KEYS, "input", "output"]
    joined = frame_a.select(gold).join(frame_b.select(gold), on=list(KEYS), how="full", coalesce=True, suffix="_b")
    only_a, only_b = pl.col("output_b").is_null(), pl.col("output").is_null()
    kind = (
        pl.when(only_a).then(pl.lit("only in A"))
        .when(only_b).then(pl.lit("only in B"))
        .when(pl.col("output") != pl.col("output_b")).then(pl.lit("gold output differs"))
        .when(pl.col("input") != pl.col("input_b")).then(pl.lit("input differs"))
    )
    bad = joined.with_columns(kind=kind).filter(pl.col("kind").is_not_null()).sort(list(KEYS))
    if bad.height:
        named = ", ".join(f"{lang}/{dataset}/{id_} ({why})" for lang, dataset, id_, why in
                          bad.head(EXAMPLES).select(*KEYS, "kind").iter_rows())
        more = f" and {bad.height - EXAMPLES} more" if bad.height > EXAMPLES else ""
        raise DataError(f"the two prediction files must hold the same rows; {bad.height} row(s) differ: {named}{more}")


def _level_entry(a: float, b: float, diff: np.ndarray | None, confidence: float) -> dict[str, Any]:
    """F1 of A and B, A - B, and with resampled differences ``diff`` its interval and the share where A > B."""
    entry: dict[str, Any] = {"a": round(a, DIGITS), "b": round(b, DIGITS), "diff": round(a - b, DIGITS)}
    if diff is not None and len(diff):
        tail = 100.0 * (1.0 - confidence) / 2.0
        low, high = np.percentile(diff, [tail, 100.0 - tail])
        entry["ci"] = {"low": round(float(low), DIGITS), "high": round(float(high), DIGITS)}
        entry["a_better"] = round(float(np.mean(diff > 0)), DIGITS)
    return entry


def compare(frame_a: pl.DataFrame, frame_b: pl.DataFrame, config: EvalConfig) -> dict[str, Any]:
    """Paired comparison of two tables from ``predictions.read``; pure (no I/O).

    ``cells[lang][dataset][level]`` and ``macro[lang][level]`` hold ``a``, ``b``, ``diff`` (A - B,
    F1 in percent) and, with ``bootstrap_samples``, ``ci`` and ``a_better`` (share of resamples with A > B).
    """
    check_same_rows(frame_a, frame_b)
    target_a, target_b = frame_target(frame_a, config), frame_target(frame_b, config)
    levels = tuple(level for level in LEVELS if level in TARGET_LEVELS[target_a] and level in TARGET_LEVELS[target_b])
    if not levels:
        raise DataError(f"a {target_a} model and a {target_b} model share no level to compare")
    columns = level_columns(levels)
    counts_a, _ = row_counts(frame_a, config, target_a)
    counts_b, _ = row_counts(frame_b, config, target_b)
    joint_columns = columns + [f"{c}_b" for c in columns]
    joint = counts_a.select(*KEYS, *columns).join(counts_b.select(*KEYS, *columns), on=list(KEYS), suffix="_b")
    groups = joint.group_by("lang", "dataset", *joint_columns).len().partition_by(["lang", "dataset"], as_dict=True)

    samples = config.bootstrap_samples
    cells: dict[str, dict[str, Any]] = {}
    macro: dict[str, dict[str, Any]] = {}
    for lang in registry.LANGS:
        cell_points: list[np.ndarray] = []  # (2, levels) per sub-dataset
        cell_diffs: list[np.ndarray] = []  # (samples, levels) per sub-dataset
        for dataset in registry.DATASETS:
            if (lang, dataset) not in groups:
                continue
            group = groups[(lang, dataset)].sort(joint_columns)  # a fixed order for the draws
            table = group.select(joint_columns).to_numpy().reshape(-1, 2, len(levels), 3).astype(np.int64)
            frequency = group["len"].to_numpy().astype(np.int64)
            totals = (table * frequency[:, None, None, None]).sum(axis=0)
            point = np.array([[micro_prf(Counts(*map(int, totals[m, i])))[2] for i in range(len(levels))]
                              for m in range(2)])
            diff = None
            if samples:
                draws_a, draws_b = bootstrap.paired_f1_draws(
                    table, frequency, samples, bootstrap.seed_for(config.seed, f"{lang}/{dataset}"))
                diff = draws_a - draws_b
                cell_diffs.append(diff)
            cell_points.append(point)
            cells.setdefault(lang, {})[dataset] = {"n": int(frequency.sum())} | {
                level: _level_entry(point[0, i], point[1, i], None if diff is None else diff[:, i], config.confidence)
                for i, level in enumerate(levels)
            }
        if cell_points:
            mean_point = np.mean(cell_points, axis=0)
            mean_diff = np.mean(cell_diffs, axis=0) if cell_diffs else None
            macro[lang] = {"datasets": len(cell_points)} | {
                level: _level_entry(float(mean_point[0, i]), float(mean_point[1, i]),
                                    None if mean_diff is None else mean_diff[:, i], config.confidence)
                for i, level in enumerate(levels)
            }
    return {
        "mode": config.mode,
        "target": {"a": target_a, "b": target_b},
        "levels": list(levels),
        "rows": frame_a.height,
        "cells": cells,
        "macro": macro,
        "bootstrap": {"samples": samples, "seed": config.seed, "confidence": config.confidence, "paired": True},
    }


def compare_files(path_a: str | Path, path_b: str | Path, config: EvalConfig) -> dict[str, Any]:
    """Read both predictions JSONL files and ``compare`` them."""
    result = compare(predictions.read(path_a), predictions.read(path_b), config)
    return {"a": Path(path_a).name, "b": Path(path_b).name, **result}


def compare_and_report(
    path_a: str | Path, path_b: str | Path, config: EvalConfig, out: str | Path | None = None
) -> dict[str, Any]:
    """``compare_files``; with ``out`` also publish the JSON (``mmm.publish.outputs``)."""
    if out is None:
        return compare_files(path_a, path_b, config)
    from mmm import publish
    from mmm.io import write_json

    with publish.outputs({"out": out}, inputs=[path_a, path_b]) as paths:
        result = compare_files(path_a, path_b, config)
        write_json(paths["out"], result)
    return result


def _signed(value: float) -> str:
    return f"{value:+.2f}"


def table(result: dict[str, Any]) -> str:
    """A compact text table: one line per (lang, sub-dataset or macro, level)."""
    boot = result["bootstrap"]
    head = (f"compare: A={result.get('a', 'A')} vs B={result.get('b', 'B')}, {result['rows']} rows, "
            f"target {result['target']['a']}/{result['target']['b']}, {result['mode']} mode, "
            f"{boot['samples']} paired resamples, {100 * boot['confidence']:g}% CI")
    lines = [head, f"{'lang':<5}{'dataset':<12}{'level':<6}{'A':>8}{'B':>8}{'A-B':>8}  {'CI':<18}{'P(A>B)':>7}"]

    def line(lang: str, name: str, entries: dict[str, Any]) -> None:
        for level in result["levels"]:
            e = entries[level]
            ci = f"[{_signed(e['ci']['low'])}, {_signed(e['ci']['high'])}]" if "ci" in e else "-"
            share = f"{e['a_better']:.3f}" if "a_better" in e else "-"
            lines.append(f"{lang:<5}{name:<12}{level:<6}{e['a']:>8.2f}{e['b']:>8.2f}{_signed(e['diff']):>8}  "
                         f"{ci:<18}{share:>7}")

    for lang, by_dataset in result["cells"].items():
        for dataset, entries in by_dataset.items():
            line(lang, dataset, entries)
        line(lang, f"macro({result['macro'][lang]['datasets']})", result["macro"][lang])
    return "\n".join(lines)
