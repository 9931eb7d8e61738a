"""The dataset release: the validated split as Parquet per configuration, with a Hugging Face dataset card.

``run`` refuses train or test files the validation gate has not passed unchanged, checks the rows it reads
against the split stage's per-cell counts, and publishes the folder (``<config>/<split>.parquet`` and
``README.md``) and its metrics as one set. ``datasets.load_dataset(FOLDER, CONFIG)`` reads any configuration.
"""

from __future__ import annotations

from typing import Any

from mmm import funnel, publish
from mmm.config import Params, ReleaseDataConfig
from mmm.errors import DataError
from mmm.io import read_records, write_json
from mmm.release import card, dataset
from mmm.validation import gate


def run(params: Params, cfg: ReleaseDataConfig) -> dict[str, Any]:
    """Write the release folder ``cfg.out_dir`` and ``cfg.metrics``; returns the metrics."""
    read = [cfg.train, cfg.test, *card.inputs(params)]
    targets = {"out": cfg.out_dir, "metrics": cfg.metrics}
    publish.check_distinct(targets, read, folders=["out"])
    for path in (cfg.train, cfg.test):
        gate.require(cfg.gate, path, "release_data")
    with publish.outputs(targets, inputs=read, folders=["out"]) as out:
        by_cell = dataset.cells({"train": read_records(cfg.train), "test": read_records(cfg.test)})
        if not by_cell:
            raise DataError(f"{cfg.train}, {cfg.test}: no rows to release")
        table = dataset.counts(by_cell)
        metrics = funnel.Metrics()
        dataset.check_against_split(table, metrics.get(params.split.metrics, "cells"), params.split.metrics)
        text = card.render(params, cfg, table, metrics)
        for (lang, name), splits in by_cell.items():
            for split, rows in splits.items():
                if rows:
                    dataset.write_parquet(out["out"] / dataset.data_file(lang, name, split), rows)
        (out["out"] / "README.md").write_text(text, encoding="utf-8")
        result = {
            "configs": len(card.configs(table)),
            "rows": {split: sum(cell[split] for row in table.values() for cell in row.values()) for split in dataset.SPLITS},
            "cells": table,
        }
        write_json(out["metrics"], result)
    return result
