"""The retention funnel: rows per stage and language, read from the metrics the stages already write.

Each filter item the dataset assembles (``assemble.items``) is a stream, traced back through the params'
paths to where its rows come from:

* ``ingested``: the ingested sources (``ingest.sources``: the Japanese originals, the source of the en/zh
  translations too) or the converted TCONER texts (``tconer.converted``, English);
* ``labelled``: ``label_map`` (en/zh labels for the originals) or ``tconer_label`` (TCONER's topic label);
* ``translated``: the ``translate`` item whose output the filter item reads (``translated`` rows);
* ``filtered``: the filter item's ``kept`` rows.

A stage a stream does not pass carries the stream's count forward (the Japanese originals are neither
label-mapped nor translated; English TCONER is not translated). Streams of one language are summed;
``released``, ``train`` and ``test`` come per language from ``assemble.metrics`` and ``split.metrics``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmm import publish, registry
from mmm.config import Params
from mmm.errors import DataError, MissingPathError, ParamsError

STAGES: tuple[str, ...] = ("ingested", "labelled", "translated", "filtered", "released", "train", "test")
Count = tuple[Path, tuple[str, ...]]  # a metrics file and the keys of one row count in it


def _metrics_of(path: Path | None, key: str) -> Path:
    if path is None:
        raise ParamsError(f"{key}: null, but the funnel reads its counts (set the metrics file)")
    return path


def stream(params: Params, item: str) -> dict[str, Count]:
    """Where the counts of filter item ``item`` are, stage -> (metrics file, keys), from ``ingested`` to ``filtered``."""
    kept = params.filter.items[item]
    counts = {"filtered": (_metrics_of(kept.metrics, f"filter.items.{item}.metrics"), ("kept",))}
    source = kept.input
    by_out = {job.out: (name, job) for name, job in params.translate.items.items()}
    if source in by_out:
        name, job = by_out[source]
        counts["translated"] = (_metrics_of(job.metrics, f"translate.items.{name}.metrics"), ("translated",))
        source = job.input
    label_map = params.label_map
    mapped = {label_map.out_dir / f"{lang}.jsonl": lang for lang in label_map.langs}
    if source == params.tconer.labelled:
        counts["labelled"] = (params.tconer.label_metrics, ("labelled",))
        counts["ingested"] = (params.tconer.convert_metrics, ("texts_written",))
    elif source in mapped:
        counts["labelled"] = (label_map.metrics, ("langs", mapped[source], "rows"))
        counts["ingested"] = (params.ingest.metrics, ("sources", label_map.source, "total"))
    elif source == params.ingest.sources:
        counts["ingested"] = (params.ingest.metrics, ("sources", kept.lang, "total"))
    else:
        raise ParamsError(f"filter.items.{item}.input: {source} comes from no stage the funnel knows (ingest.sources, "
                          "tconer.labelled, a label_map output or a translate item's out)")
    return counts


def inputs(params: Params) -> list[Path]:
    """Every metrics file the funnel reads, in first-use order (the funnel stage's deps in dvc.yaml)."""
    files = [path for item in params.assemble.items for path, _ in stream(params, item).values()]
    return list(dict.fromkeys([*files, params.assemble.metrics, params.split.metrics]))


class Metrics:
    """The metrics JSON files, each read once; a missing file or key is an error naming the file."""

    def __init__(self) -> None:
        self._files: dict[Path, Any] = {}

    def _file(self, path: Path) -> Any:
        if path not in self._files:
            if not path.is_file():
                raise MissingPathError(f"{path}: no such metrics file (the funnel reads it: run the stage that writes it)")
            try:
                self._files[path] = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: not valid JSON ({exc})") from None
        return self._files[path]

    def get(self, path: Path, *keys: str) -> Any:
        """The value at ``keys`` in the metrics at ``path``; a ``DataError`` naming file and key when it is missing."""
        node = self._file(path)
        for depth, key in enumerate(keys):
            if not isinstance(node, dict) or key not in node:
                raise DataError(f"{path}: no key {'.'.join(keys[: depth + 1])!r} (written by an older version of its "
                                "stage? rerun it)")
            node = node[key]
        return node


def rows(params: Params) -> list[dict[str, Any]]:
    """One row per language (registry order) and stage (``STAGES`` order): ``lang, stage, order, label, rows``."""
    metrics = Metrics()
    by_lang: dict[str, list[int]] = {}
    for item in params.assemble.items:
        counts = stream(params, item)
        sums = by_lang.setdefault(params.filter.items[item].lang, [0] * 4)
        carried = 0
        for i, stage in enumerate(STAGES[:4]):
            if stage in counts:  # else the stream does not pass this stage: its count goes on unchanged
                path, keys = counts[stage]
                carried = metrics.get(path, *keys)
            sums[i] += carried
    split = params.split.metrics
    table: list[dict[str, Any]] = []
    for lang in (lang for lang in registry.LANGS if lang in by_lang):
        cells = metrics.get(split, "cells").get(lang, {})
        sides = [sum(metrics.get(split, "cells", lang, dataset, side) for dataset in cells) for side in ("train", "test")]
        counts = [*by_lang[lang], metrics.get(params.assemble.metrics, "table2", lang, "total"), *sides]
        for order, (stage, count) in enumerate(zip(STAGES, counts, strict=True), start=1):
            table.append({"lang": lang, "stage": stage, "order": order, "label": f"{lang} {order} {stage}", "rows": count})
    return table


def run(params: Params, out: Path) -> list[dict[str, Any]]:
    """Compute the funnel and publish it to ``out`` (plot data, see ``mmm.io.write_table``)."""
    from mmm.io import write_table

    with publish.outputs({"out": out}, inputs=inputs(params)) as paths:
        table = rows(params)
        write_table(paths["out"], table)
    return table
