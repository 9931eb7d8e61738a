"""The released rows: one Parquet file per configuration and split, and the counts the card and metrics report.

A configuration is one cell, ``<lang>-<DATASET>`` (``en-SCNM``, ``zh-SCPOS-RW``): the names ``datasets`` accepts,
the sub-dataset names unchanged. Its files are ``<config>/train.parquet`` and ``<config>/test.parquet``; a split
without rows has no file (``datasets`` cannot read a Parquet file of no rows), so a cell without test rows is a
configuration with a train split only. The per-language and ``all`` configurations list these files in the card
and have none of their own.

Bytes depend only on the rows: record fields only, the split files' row order, one schema, one compression.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product
from pathlib import Path

from mmm import registry
from mmm.errors import DataError
from mmm.records import RECORD_FIELDS

SPLITS: tuple[str, ...] = ("train", "test")
Cells = dict[tuple[str, str], dict[str, list[dict]]]  # (lang, dataset) -> split -> rows


def config_name(lang: str, dataset: str) -> str:
    return f"{lang}-{dataset}"


def data_file(lang: str, dataset: str, split: str) -> str:
    """A split's file, relative to the release folder (as the card's ``data_files`` name it)."""
    return f"{config_name(lang, dataset)}/{split}.parquet"


def cells(splits: Mapping[str, list[dict]]) -> Cells:
    """The rows of every split grouped by cell, cells in registry order (languages, then sub-datasets)."""
    found: Cells = {}
    for split, rows in splits.items():
        for row in rows:
            found.setdefault((row["lang"], row["dataset"]), {name: [] for name in SPLITS})[split].append(
                {field: row[field] for field in RECORD_FIELDS})
    order = {cell: i for i, cell in enumerate(product(registry.LANGS, registry.DATASETS))}
    return dict(sorted(found.items(), key=lambda item: order[item[0]]))


def counts(by_cell: Cells) -> dict[str, dict[str, dict[str, int]]]:
    """``{lang: {dataset: {split: rows}}}`` of the cells."""
    table: dict[str, dict[str, dict[str, int]]] = {}
    for (lang, dataset), splits in by_cell.items():
        table.setdefault(lang, {})[dataset] = {split: len(splits[split]) for split in SPLITS}
    return table


def check_against_split(table: Mapping[str, Mapping[str, Mapping[str, int]]], split_cells: object, source: Path) -> None:
    """Raise ``DataError`` unless the split stage's metrics (``cells`` of ``source``) count the rows read, cell by cell."""
    if not isinstance(split_cells, Mapping):
        raise DataError(f"{source}: 'cells' is not a mapping (written by an older split stage? rerun it)")
    problems = []
    keys = {(lang, ds) for lang, row in table.items() for ds in row}
    keys |= {(lang, ds) for lang, row in split_cells.items() if isinstance(row, Mapping) for ds in row}
    for lang, dataset in sorted(keys):
        row = split_cells.get(lang)
        listed = row.get(dataset) if isinstance(row, Mapping) else None
        for split in SPLITS:
            read = table.get(lang, {}).get(dataset, {}).get(split, 0)
            recorded = listed.get(split) if isinstance(listed, Mapping) else None
            if read != recorded:
                problems.append(f"{source}: cells.{lang}.{dataset}.{split} is {recorded}, but the {split} file has "
                                f"{read} rows of {lang}/{dataset} (stale metrics? rerun `dvc repro split`)")
    if problems:
        raise DataError(*problems)


def write_parquet(path: Path, rows: list[dict]) -> None:
    """``rows`` as one Parquet file of string columns (the record fields), zstd, no pandas metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(field, pa.string()) for field in RECORD_FIELDS])
    table = pa.Table.from_pylist(rows, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", write_statistics=False)
