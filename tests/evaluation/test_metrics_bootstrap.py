"""Bootstrap intervals: seeded, exact in distribution, independent across sub-datasets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from configs import make
from mmm.evaluation import evaluate_file
from mmm.evaluation.bootstrap import _f1_percent, f1_intervals, seed_for


def _rows(n: int, seed: int) -> np.ndarray:
    """``(n, 1, 3)`` WL-like counts: 0-3 real pairs, some generated, some right."""
    rng = np.random.default_rng(seed)
    real = rng.integers(0, 4, n)
    generated = rng.integers(0, 4, n)
    tp = np.minimum(rng.integers(0, 4, n), np.minimum(real, generated))
    return np.stack([tp, generated, real], axis=1)[:, None, :]


def _compress(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distinct, frequency = np.unique(rows.reshape(len(rows), -1), axis=0, return_counts=True)
    return distinct.reshape(-1, *rows.shape[1:]), frequency


def test_same_seed_same_interval_other_seed_other_interval():
    distinct, frequency = _compress(_rows(300, 0))
    first = f1_intervals(distinct, frequency, 500, seed_for(0, "en/SCNM"), 0.95)
    assert first == f1_intervals(distinct, frequency, 500, seed_for(0, "en/SCNM"), 0.95)
    assert first != f1_intervals(distinct, frequency, 500, seed_for(1, "en/SCNM"), 0.95)


def test_matches_the_textbook_row_resampling_bootstrap():
    # Drawing multiplicities of distinct rows is the same distribution as resampling rows.
    rows = _rows(400, 1)
    distinct, frequency = _compress(rows)
    ours = f1_intervals(distinct, frequency, 4000, seed_for(0, "x"), 0.95)[0]
    rng = np.random.default_rng(7)
    picks = rng.integers(0, len(rows), size=(4000, len(rows)))
    totals = rows[picks, 0, :].sum(axis=1)
    textbook = np.percentile(_f1_percent(totals[:, 0], totals[:, 1], totals[:, 2]), [2.5, 97.5])
    assert ours[0] == pytest.approx(textbook[0], abs=0.6) and ours[1] == pytest.approx(textbook[1], abs=0.6)
    point = _f1_percent(*rows[:, 0, :].sum(axis=0))
    assert ours[0] < point < ours[1]


def test_identical_rows_give_a_zero_width_interval():
    rows = np.array([[[1, 1, 1], [1, 2, 2]]] * 50)
    distinct, frequency = _compress(rows)
    (tl_low, tl_high), (wl_low, wl_high) = f1_intervals(distinct, frequency, 200, seed_for(0, "k"), 0.95)
    assert tl_low == tl_high == 100.0 and wl_low == wl_high == 50.0


def test_intervals_in_metrics_do_not_depend_on_other_sub_datasets(tmp_path):
    base = {"lang": "en", "dataset": "SCNM", "input": "Ann met Bob./NER", "output": "Society/NER/:Person;Ann:Person;Bob"}
    rows = [{**base, "id": f"a{i}", "prediction": ["Society/NER/:Person;Ann", "Nature/NER/", "Society/NER/:Person;Bob:Person;Ann"][i % 3]}
            for i in range(30)]
    other = [{"id": f"z{i}", "lang": "zh", "dataset": "TCREE", "input": "文/Relation Extraction",
              "output": "政治/Relation Extraction/:a;隶属;b", "prediction": ""} for i in range(10)]

    def ci(records):
        path = tmp_path / "p.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        return evaluate_file(path, make("evaluate", bootstrap_samples=300, seed=3))["metrics"]["en"]["SCNM"]["ci"]

    alone = ci(rows)
    assert alone == ci(other + rows)
    assert alone["TL"]["low"] < alone["TL"]["high"]
    assert set(alone) == {"TL", "WL", "ALL"}


def test_zero_samples_turns_intervals_off(tmp_path):
    path = tmp_path / "p.jsonl"
    row = {"id": "a", "lang": "en", "dataset": "SCNM", "input": "Ann./NER", "output": "Society/NER/:Person;Ann", "prediction": ""}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    assert "ci" not in evaluate_file(path, make("evaluate", bootstrap_samples=0))["metrics"]["en"]["SCNM"]


def test_paired_draws_match_the_textbook_paired_row_resampling():
    # Resampling rows once and scoring both models on them == one multinomial over joint (A, B) vectors.
    from mmm.evaluation.bootstrap import paired_f1_draws

    rows_a = _rows(400, 2)
    rows_b = rows_a.copy()
    rows_b[::3, 0, 0] = 0  # B: A missing the right pairs of every third row (the two are correlated)
    joint = np.stack([rows_a, rows_b], axis=1)  # (n, 2, 1, 3)
    distinct, frequency = _compress(joint)
    draws_a, draws_b = paired_f1_draws(distinct, frequency, 4000, seed_for(0, "pair"))
    ours = np.percentile(draws_a[:, 0] - draws_b[:, 0], [2.5, 97.5])
    picks = np.random.default_rng(8).integers(0, len(joint), size=(4000, len(joint)))
    totals = joint[picks, :, 0, :].sum(axis=1)  # (4000, 2, 3)
    f1 = _f1_percent(totals[..., 0], totals[..., 1], totals[..., 2])
    textbook = np.percentile(f1[:, 0] - f1[:, 1], [2.5, 97.5])
    assert ours == pytest.approx(textbook, abs=0.8)
    # Pairing: the difference varies less than it would if A and B were resampled independently.
    assert np.std(draws_a[:, 0] - draws_b[:, 0]) < np.hypot(np.std(draws_a[:, 0]), np.std(draws_b[:, 0]))
