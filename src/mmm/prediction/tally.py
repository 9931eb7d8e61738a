"""The predictions file's metrics, counted row by row as the file is written (no row list in memory)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any


class Tally:
    """Counts per (lang, dataset) cell and overall; ``well_formed(row)`` says whether a prediction parses."""

    def __init__(self, well_formed: Callable[[dict], bool]):
        self.well_formed = well_formed
        self.rows = 0
        self.new_tokens = 0
        self.finish: Counter[str] = Counter()  # in order of first appearance, as the file has them
        self.cells: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)

    def add(self, row: dict) -> dict:
        """Count ``row`` (its ``_new_tokens`` taken out); returns the row as the file holds it."""
        self.new_tokens += row.pop("_new_tokens")
        self.rows += 1
        self.finish[row["finish"]] += 1
        cell = self.cells[(row["lang"], row["dataset"])]
        cell["rows"] += 1
        cell["well_formed"] += self.well_formed(row)
        cell["truncated"] += row["finish"] == "max_new_tokens"
        return row

    def by_cell(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{lang: {dataset: {rows, well_formed, truncated}}}``, languages and datasets sorted."""
        cells: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
        for (lang, dataset), counts in sorted(self.cells.items()):
            cells[lang][dataset] = {key: counts[key] for key in ("rows", "well_formed", "truncated")}
        return dict(cells)

    def metrics(self, head: dict[str, Any], tail: dict[str, Any]) -> dict[str, Any]:
        """``head`` (model, target, test_rows), the counts, then ``tail`` (settings), then the cells."""
        cells = self.by_cell()
        return {
            **head,
            "predicted_rows": self.rows,
            "skipped_by_cap": head["test_rows"] - self.rows,
            "well_formed": sum(c["well_formed"] for lang in cells.values() for c in lang.values()),
            "finish": dict(self.finish),
            "new_tokens": self.new_tokens,
            **tail,
            "cells": cells,
        }
