"""Train/test split per (language, sub-dataset), as in the paper's Appendix B.

Within each cell the rows are de-duplicated by text (key below), then ranked by a keyed hash of
``seed`` and the record id; the first ``n`` go to train, the rest to test. Ranking by id
instead of file position makes the split independent of row order, and because translated
records keep their source id, a text and its translations rank alike in every language, which
keeps most of them on the same side (the number that still cross is reported as
``cross_lingual.test_ids_trained_in_other_lang``).

The dev split, for choosing hyperparameters without looking at test: the last ``dev_count``
training rows of each cell by rank (``dev_size``, at most half of them) go to ``dev``, the others to
``fit``; ``fit`` + ``dev`` = ``train``, row for row. A dev row whose text is fitted in another cell (the
SCPOS sub-datasets share texts) goes back to ``fit``, so fit and dev share no text either. The final
model trains on ``train``; a tuning run trains on ``fit`` and scores ``dev`` (README, "Choosing the
training settings").

``n`` is ``min(train_size, floor(max_train_fraction * rows))``. The paper profile sets
``train_size: paper`` (Table 3) and ``max_train_fraction: 1.0``, which reproduces Table 4's
test sizes from Table 2's rows; the embedded default caps the fraction so that every cell of
the small sample keeps a test set.

Texts are compared by ``records.text_key`` (Unicode NFKC, then every whitespace character removed),
for de-duplication and for train/test leakage alike: a near-duplicate that differs only in spacing or
in full-width forms (``ＡＢＣ１２３`` / ``ABC123``, ``東京 に`` / ``東京に``) counts as the same text, in
``duplicates`` and ``test_text_in_train`` as everywhere else.

Across cells, ``leakage`` decides: ``drop`` (default) removes a test row whose text is trained on in
another cell, so train and test share no text at all; ``keep`` (the paper profile) leaves it in test,
as the paper's Table 4 sizes imply. Either way the count is in the metrics (``leakage.test_text_in_train``,
and per cell), and the validation gate checks what the mode promises: no shared text anywhere (``drop``),
or none within a cell (``keep``).
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mmm import publish
from mmm.config import SplitConfig
from mmm.errors import DataError
from mmm.io import read_records, write_json, write_jsonl
from mmm.records import split_input, text_key

log = logging.getLogger(__name__)

Cell = tuple[str, str]  # (lang, dataset)


def rank_key(seed: int, record_id: str) -> int:
    """A stable pseudo-random rank for an id (same in every language and Python process)."""
    digest = hashlib.blake2b(f"{seed}\x00{record_id}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass
class CellCounts:
    rows: int = 0
    duplicates: int = 0
    conflicting_duplicates: int = 0  # same text, different output: only the kept one is used
    requested: int = 0
    train: int = 0
    test: int = 0
    dev: int = 0  # of the train rows: held out to choose hyperparameters
    test_text_in_train: int = 0  # test rows whose text (by key) is trained on in another cell: dropped, or kept (leakage: keep)


@dataclass
class SplitResult:
    train: list[dict]
    test: list[dict]
    cells: dict[Cell, CellCounts]
    cross_lingual_leaks: int
    fit: list[dict]
    dev: list[dict]

    def metrics(self, cfg: SplitConfig) -> dict[str, Any]:
        nested: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
        for (lang, dataset), counts in sorted(self.cells.items()):
            nested[lang][dataset] = dict(counts.__dict__)
        total = lambda name: sum(getattr(c, name) for c in self.cells.values())  # noqa: E731
        return {
            "seed": cfg.seed,
            "train_size": cfg.train_size,
            "max_train_fraction": cfg.max_train_fraction,
            "rows": total("rows"),
            "duplicates": total("duplicates"),
            "conflicting_duplicates": total("conflicting_duplicates"),
            "train": len(self.train),
            "test": len(self.test),
            "dev_size": cfg.dev_size,
            "fit": len(self.fit),
            "dev": len(self.dev),
            "cells_without_test": sum(1 for c in self.cells.values() if c.test == 0),
            "leakage": {"mode": cfg.leakage, "test_text_in_train": total("test_text_in_train")},
            "cross_lingual": {"test_ids_trained_in_other_lang": self.cross_lingual_leaks},
            "cells": dict(nested),
        }


def split_records(records: Iterable[dict], cfg: SplitConfig) -> SplitResult:
    """Split already-validated records; both outputs keep the input's row order.

    Duplicates within a cell, and test texts trained on in another cell, are found by ``text_key``.
    """
    records = list(records)
    by_cell: dict[Cell, list[int]] = defaultdict(list)
    for position, record in enumerate(records):
        by_cell[(record["lang"], record["dataset"])].append(position)

    cells: dict[Cell, CellCounts] = {}
    side = [""] * len(records)  # "train", "test" or "" (a dropped duplicate)
    duplicate_ids: list[str] = []
    for (lang, dataset), positions in by_cell.items():
        counts = cells[(lang, dataset)] = CellCounts(rows=len(positions))
        # rank by a 64-bit hash of the id: order-independent; de-duplication keeps the best-ranked copy
        ranks = {p: rank_key(cfg.seed, records[p]["id"]) for p in positions}
        positions = sorted(positions, key=ranks.__getitem__)
        by_text: dict[str, dict] = {}
        unique: list[int] = []
        seen_ids: set[str] = set()
        for position in positions:
            record = records[position]
            text = _key(record)
            first = by_text.get(text)
            if first is not None:
                counts.duplicates += 1
                counts.conflicting_duplicates += first["output"] != record["output"]
                continue
            if record["id"] in seen_ids:
                duplicate_ids.append(f"{lang}/{dataset}/{record['id']}")
            seen_ids.add(record["id"])
            by_text[text] = record
            unique.append(position)
        counts.requested = cfg.requested(lang, dataset)
        n_train = cfg.train_count(lang, dataset, len(unique))
        counts.train, counts.test = n_train, len(unique) - n_train
        n_fit = n_train - cfg.dev_count(n_train)
        for i, position in enumerate(unique):
            side[position] = "fit" if i < n_fit else "dev" if i < n_train else "test"

    if duplicate_ids:
        shown = ", ".join(duplicate_ids[:20])
        raise DataError(f"{len(duplicate_ids)} id(s) name different texts in the same cell (ids must be unique): {shown}")
    # The same text can sit in two cells (an untranslated row in another language, the SCPOS sub-datasets
    # sharing Japanese texts). leakage "drop": a test row whose text is trained on anywhere is dropped, so
    # train and test are disjoint by text key; "keep" (the paper): it stays and is only counted.
    fitted_texts = {_key(records[p]) for p, s in enumerate(side) if s == "fit"}
    for position, record in enumerate(records):
        if side[position] == "dev" and _key(record) in fitted_texts:
            side[position] = "fit"  # its text is fitted in another cell: never score dev on it
    for position, record in enumerate(records):
        if side[position] == "dev":
            cells[(record["lang"], record["dataset"])].dev += 1
    trained_texts = {_key(records[p]) for p, s in enumerate(side) if s in ("fit", "dev")}
    for position, record in enumerate(records):
        if side[position] == "test" and _key(record) in trained_texts:
            counts = cells[(record["lang"], record["dataset"])]
            counts.test_text_in_train += 1
            if cfg.leakage == "drop":
                side[position] = ""
                counts.test -= 1
    train = [r for r, s in zip(records, side) if s in ("fit", "dev")]
    test = [r for r, s in zip(records, side) if s == "test"]
    fit = [r for r, s in zip(records, side) if s == "fit"]
    dev = [r for r, s in zip(records, side) if s == "dev"]
    return SplitResult(train, test, cells, _cross_lingual_leaks(train, test), fit, dev)


def _key(record: dict) -> str:
    """The record's text as compared for duplicates and leakage (``records.text_key``)."""
    return text_key(split_input(record["input"], record["dataset"])[0])


def _cross_lingual_leaks(train: list[dict], test: list[dict]) -> int:
    """Test rows whose id (hence a translation of their text) is trained on in another language."""
    trained: dict[tuple[str, str], set[str]] = defaultdict(set)
    for record in train:
        trained[(record["dataset"], record["id"])].add(record["lang"])
    empty: set[str] = set()
    return sum(1 for r in test if len(langs := trained.get((r["dataset"], r["id"]), empty)) > (r["lang"] in langs))


def run(cfg: SplitConfig) -> dict[str, Any]:
    """Read and validate ``cfg.input``; publish the train and test files and the counts as one set."""
    files = {"train": cfg.train, "test": cfg.test, "fit": cfg.fit, "dev": cfg.dev, "metrics": cfg.metrics}
    with publish.outputs(files, inputs=[cfg.input]) as out:
        records = read_records(cfg.input)
        result = split_records(records, cfg)
        for name in ("train", "test", "fit", "dev"):
            write_jsonl(out[name], getattr(result, name))
        metrics = result.metrics(cfg)
        write_json(out["metrics"], metrics)
    for (lang, dataset), counts in sorted(result.cells.items()):
        if counts.test == 0:
            log.warning("%s/%s has no test rows (%d rows, %d to train)", lang, dataset, counts.rows, counts.train)
    return metrics
