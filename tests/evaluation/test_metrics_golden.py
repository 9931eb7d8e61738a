"""`mmm evaluate`'s metrics JSON stays byte-identical: a golden file written before the paired refactor."""

from __future__ import annotations

from pathlib import Path

from test_metrics_report import sample_predictions

from configs import make
from mmm.evaluation import evaluate_file
from mmm.io import write_json

GOLDEN = Path(__file__).parent / "data" / "evaluate_sample.json"


def test_metrics_json_matches_the_golden_bytes(tmp_path, sample_dir):
    predictions = tmp_path / "gold_p.jsonl"  # the name is part of the JSON
    sample_predictions(sample_dir, predictions)
    write_json(tmp_path / "m.json", evaluate_file(predictions, make("evaluate", bootstrap_samples=300, seed=11)))
    assert (tmp_path / "m.json").read_bytes() == GOLDEN.read_bytes()
