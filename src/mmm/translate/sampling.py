"""A seeded sample of the translation inputs per sub-dataset, the paper's 10,000 rows of each big SCPOS set.

A row is chosen by the rank of its id under ``split.rank_key(seed, id)``: the ``n`` best-ranked ids of
a sub-dataset are translated, so the choice depends on neither file order nor the other rows, and
a rerun on the same input picks the same rows (they are the ids in the stage's OUT and FAILED files).
Sub-datasets not named are translated whole. Rows left out are counted, never silently lost.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping

from mmm.split import rank_key
from mmm.translate.types import SourceRow


def sample_rows(rows: list[SourceRow], sizes: Mapping[str, int] | None, seed: int) -> tuple[list[SourceRow], dict[str, int]]:
    """``(chosen rows in input order, rows left out per sub-dataset)``; ``sizes`` None or empty keeps every row."""
    if not sizes:
        return rows, {}
    by_dataset: dict[str, list[SourceRow]] = defaultdict(list)
    for row in rows:
        by_dataset[row.sample.dataset].append(row)
    dropped: set[str] = set()
    for dataset, size in sizes.items():
        ranked = sorted(by_dataset.get(dataset, []), key=lambda row: rank_key(seed, row.id))
        dropped.update(row.id for row in ranked[size:])
    left_out = Counter(row.sample.dataset for row in rows if row.id in dropped)
    return [row for row in rows if row.id not in dropped], dict(sorted(left_out.items()))
