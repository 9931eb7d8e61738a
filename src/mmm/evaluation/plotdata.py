"""The F1 of an evaluation as plot data for ``dvc plots``: one row per (lang, dataset, level).

Every number is one the metrics JSON already holds (``metrics[lang][dataset]``); nothing is recomputed.
The rows go to one file per level (``TL.json``, ``WL.json``, ``ALL.json`` in a folder): DVC draws each file
of a plotted folder as its own chart, and its built-in bar templates can neither facet nor filter by a
column, while 63 bars in one chart of DVC's fixed 300 px height leave no room for their names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmm.evaluation.algorithm1 import LEVELS
from mmm.io import table_text


def f1_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows in the result's order: languages, sub-datasets, then the levels scored (TL, WL, ALL).

    ``ci_low`` / ``ci_high`` are ``None`` when the bootstrap is off (``evaluate.bootstrap_samples: 0``).
    """
    rows = []
    for lang, by_dataset in result["metrics"].items():
        for dataset, figures in by_dataset.items():
            for level in (level for level in LEVELS if level in figures):
                ci = figures.get("ci", {}).get(level, {})
                rows.append({"cell": f"{lang}/{dataset}", "lang": lang, "dataset": dataset, "level": level,
                             "n": figures["n"], "f1": figures[level], "ci_low": ci.get("low"), "ci_high": ci.get("high")})
    return rows


def write_f1(folder: Path, result: dict[str, Any]) -> list[Path]:
    """Write ``<level>.json`` for every level scored into ``folder``, a fresh folder that ``mmm.publish``
    publishes as a whole (so the files themselves need no temporaries)."""
    rows = f1_rows(result)
    written = []
    for level in dict.fromkeys(row["level"] for row in rows):
        written.append(folder / f"{level}.json")
        written[-1].write_text(table_text(row for row in rows if row["level"] == level), encoding="utf-8")
    return written
