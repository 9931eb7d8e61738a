"""Rule-based label mapping (paper Section 3.1, Figure 3 left): Japanese labels -> English / Chinese.

The tables are ``src/mmm/resources/registry.yaml`` (one row per label with its ja/en/zh form).
Every text-level and word-level label of every row is mapped; nothing passes through silently:
if any label lacks a row in the table, the stage writes nothing and lists every unmapped label
with its count and an example id. The output rows keep the Japanese text and entities, carry
the mapped labels and say so with ``labels_lang``; the translate stage reads them.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmm import publish, registry
from mmm.errors import MMMError, ParamsError
from mmm.io import read_samples, write_json, write_jsonl
from mmm.records import Sample
from mmm.translate.run import LABELS_LANG

log = logging.getLogger(__name__)


class LabelMapError(MMMError, ValueError):
    """Labels without a rule (or rows that cannot be mapped by rules); lists every one."""


@dataclass(frozen=True)
class Gap:
    """One label (or row kind) the tables cannot map, with how often and where it occurs."""

    target: str
    dataset: str
    level: str  # "text" | "word" | "open-domain" | "language"
    label: str
    count: int
    example_id: str

    def __str__(self) -> str:
        if self.level == "open-domain":
            return (f"{self.dataset}: open-domain labels have no rule mapping ({self.count} row(s), e.g. {self.example_id}); "
                    "translate such rows directly (their labels are translated by the LLM)")
        if self.level == "language":
            return f"{self.count} row(s) in {self.label!r}, not the source language (e.g. {self.example_id})"
        return (f"{self.dataset} {self.level}-level label {self.label!r} -> {self.target}: "
                f"{self.count} row(s), e.g. {self.example_id}")


def map_sample(sample: Sample, target: str, source: str = "ja") -> tuple[Sample, list[tuple[str, str]]]:
    """``sample`` with its labels in ``target``, and the ``(level, label)`` pairs that have no rule."""
    kind = registry.kind(sample.dataset)
    text_map, word_map = kind.label_map("text", source, target), kind.label_map("word", source, target)
    gaps = []
    if sample.text_label not in text_map:
        gaps.append(("text", sample.text_label))
    field = kind.label_field
    pairs = []
    for piece in sample.pairs:
        label = piece[field]
        if label not in word_map:
            gaps.append(("word", label))
        pairs.append(tuple(word_map.get(label, label) if i == field else v for i, v in enumerate(piece)))
    mapped = Sample(sample.id, sample.lang, sample.dataset, sample.text, sample.instruct,
                    text_map.get(sample.text_label, sample.text_label), tuple(pairs))
    return mapped, gaps


def map_all(samples: list[Sample], targets: list[str], source: str = "ja") -> dict[str, list[Sample]]:
    """Map every sample into every target; raises ``LabelMapError`` listing all gaps, sorted."""
    counts: Counter = Counter()
    example: dict[tuple, str] = {}
    mapped: dict[str, list[Sample]] = {t: [] for t in targets}

    def gap(key: tuple, sample_id: str) -> None:
        counts[key] += 1
        example.setdefault(key, sample_id)

    for sample in samples:
        if sample.lang != source:
            gap(("*", sample.dataset, "language", sample.lang), sample.id)
            continue
        if registry.kind(sample.dataset).open_domain:
            gap(("*", sample.dataset, "open-domain", ""), sample.id)
            continue
        for target in targets:
            result, gaps = map_sample(sample, target, source)
            for level, label in gaps:
                gap((target, sample.dataset, level, label), sample.id)
            mapped[target].append(result)
    if counts:
        gaps = [Gap(*key, count=n, example_id=example[key]) for key, n in sorted(counts.items())]
        raise LabelMapError(
            f"{len(gaps)} label(s) or row kind(s) cannot be mapped by rules (add the labels to "
            "src/mmm/resources/registry.yaml); nothing was written:\n  " + "\n  ".join(map(str, gaps))
        )
    return mapped


def run(input_path: str | Path, out_dir: str | Path, targets: list[str], metrics_path: str | Path | None,
        source: str) -> dict[str, Any]:
    """Publish ``out_dir/<target>.jsonl`` for every target and the counts as one set; returns the counts."""
    unknown = [t for t in targets if t not in registry.LANGS or t == source]
    if unknown or not targets:
        raise ParamsError(f"label_map.langs must be languages of {registry.LANGS} other than {source!r}, got {targets}")
    files = {target: Path(out_dir) / f"{target}.jsonl" for target in targets}
    with publish.outputs({**files, "metrics": metrics_path}, inputs=[input_path]) as out:
        metrics = _map_and_write(input_path, targets, source, out)
    return metrics


def _map_and_write(input_path: str | Path, targets: list[str], source: str, out: publish.Outputs) -> dict[str, Any]:
    samples = read_samples(input_path)
    mapped = map_all(samples, targets, source)
    metrics: dict[str, Any] = {"input_rows": len(samples), "source": source, "langs": {}}
    for target, rows in mapped.items():
        write_jsonl(out[target], ({**s.to_record(), LABELS_LANG: target} for s in rows))
        by_dataset: dict[str, Counter] = defaultdict(Counter)
        for s in rows:
            by_dataset[s.dataset]["rows"] += 1
            by_dataset[s.dataset]["word_labels"] += len(s.pairs)
        metrics["langs"][target] = {
            "rows": len(rows),
            "distinct_text_labels": len({s.text_label for s in rows}),
            "distinct_word_labels": len({w for s in rows for w in s.word_labels()}),
            "by_dataset": {d: dict(by_dataset[d]) for d in registry.DATASETS if d in by_dataset},
        }
    if "metrics" in out:
        write_json(out["metrics"], metrics)
    log.info("label map: %d rows -> %s", len(samples), ", ".join(f"{t} {len(r)}" for t, r in mapped.items()))
    return metrics
