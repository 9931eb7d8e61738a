"""Seeded bootstrap confidence intervals for micro P/R/F1, exact and cheap.

Resampling n rows with replacement and summing their counts only depends on how many times each
*distinct* count vector is drawn, and those multiplicities are multinomial over the distinct
vectors with probabilities proportional to their frequencies. Drawing them directly is the same
distribution as the textbook row-resampling bootstrap, at a cost that grows with the number of
distinct vectors (tens to hundreds) instead of the number of rows (up to ~190,000 per
sub-dataset in the paper's Japanese SCPOS test sets).
"""

from __future__ import annotations

import zlib

import numpy as np


def _f1_percent(tp: np.ndarray, generated: np.ndarray, real: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(generated > 0, tp / np.maximum(generated, 1), 0.0)
        recall = np.where(real > 0, tp / np.maximum(real, 1), 0.0)
        total = precision + recall
        return np.where(total > 0, 200.0 * precision * recall / np.where(total > 0, total, 1.0), 0.0)


def seed_for(seed: int, key: str) -> np.random.SeedSequence:
    """A stream per (seed, group) so one group's interval does not depend on which others are present."""
    return np.random.SeedSequence([seed, zlib.crc32(key.encode("utf-8"))])


def f1_draws(distinct: np.ndarray, frequency: np.ndarray, samples: int, seed: np.random.SeedSequence) -> np.ndarray:
    """F1 (percent) in ``samples`` resamples of the rows: shape ``(samples, *distinct.shape[1:-1])``.

    ``distinct[i]`` holds the ``tp, generated, real`` counts (last axis) of the rows drawn ``frequency[i]``
    times; one multinomial draw per resample picks how many of each (rows must be > 0).
    """
    rows = int(frequency.sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(rows, frequency / rows, size=samples)  # (samples, k)
    totals = (draws @ distinct.reshape(len(distinct), -1)).reshape(samples, *distinct.shape[1:])
    return _f1_percent(totals[..., 0], totals[..., 1], totals[..., 2])


def f1_intervals(
    distinct: np.ndarray,
    frequency: np.ndarray,
    samples: int,
    seed: np.random.SeedSequence,
    confidence: float,
) -> list[tuple[float, float]]:
    """Percentile intervals of F1 (percent) for each level.

    ``distinct`` is ``(k, levels, 3)``: the distinct per-row ``tp, generated, real`` counts, and
    ``frequency[i]`` how many rows have ``distinct[i]``.
    """
    levels = distinct.shape[1]
    if int(frequency.sum()) == 0 or samples <= 0:
        return [(0.0, 0.0)] * levels
    f1 = f1_draws(distinct, frequency, samples, seed)  # (samples, levels)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(f1, [tail, 100.0 - tail], axis=0)
    return [(float(lo), float(hi)) for lo, hi in zip(low, high)]


def paired_f1_draws(
    distinct: np.ndarray, frequency: np.ndarray, samples: int, seed: np.random.SeedSequence
) -> tuple[np.ndarray, np.ndarray]:
    """F1 (percent) of models A and B in ``samples`` paired resamples, each ``(samples, levels)``.

    ``distinct`` is ``(k, 2, levels, 3)``: the distinct *joint* per-row counts (A's, then B's), so
    one multinomial draw resamples rows once and scores both models on the same resample.
    """
    levels = distinct.shape[2]
    if int(frequency.sum()) == 0 or samples <= 0:
        empty = np.zeros((max(samples, 0), levels))
        return empty, empty.copy()
    f1 = f1_draws(distinct, frequency, samples, seed)  # (samples, 2, levels)
    return f1[:, 0], f1[:, 1]
