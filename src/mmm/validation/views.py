"""The frames the suites run on, built with polars from one or more JSONL files.

A check names its files by key (``{"mmm": path}`` or ``{"train": ..., "test": ...}``); the key
becomes the ``source`` column, so a suite can compare files (train vs test) and a failure can
point at ``source:line``. Frames reach GX as pandas (GX 1.x has no polars engine).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import polars as pl

from mmm import filters
from mmm.records import RECORD_FIELDS

INDEX_COLUMNS: tuple[str, ...] = ("id", "source", "line")
_KEEP = ("id", "lang", "dataset", "source", "line")


def read_sources(files: Mapping[str, str | Path]) -> pl.DataFrame:
    """All rows of ``files`` with ``source`` (the file's key) and ``line``; record fields as strings."""
    frames = []
    for key, path in files.items():
        if not Path(path).exists():
            raise FileNotFoundError(f"{path} (source {key!r}) does not exist")
        frame = filters.read_frame(path)
        frames.append(
            frame.select(
                *(pl.col(name).cast(pl.String, strict=False) for name in RECORD_FIELDS),
                source=pl.lit(key),
                line=pl.col(filters.LINE).cast(pl.Int64),
            )
        )
    return pl.concat(frames, how="vertical") if frames else pl.DataFrame()


VIEWS: tuple[str, ...] = ("records", "entities")


def parse(files: Mapping[str, str | Path]) -> pl.DataFrame:
    """The rows of ``files`` parsed once per check (``filters.parse``); every view is built from it."""
    return filters.parse(read_sources(files))


def view(parsed: pl.DataFrame, name: str, leakage: str = "drop") -> pd.DataFrame:
    """One view (``records`` or ``entities``) of ``parsed`` rows, as a pandas frame.

    ``records`` carries ``text_key``, the text as compared for train/test leakage (``records.text_key``:
    NFKC, whitespace removed), so the split gate catches near-duplicates the split itself drops, and
    ``leak_key``, what must not be in both train and test for the split's ``leakage`` mode: the text key
    (``drop``), or the text key within its language and sub-dataset (``keep``).
    """
    if leakage not in ("drop", "keep"):
        raise ValueError(f"unknown leakage mode {leakage!r}")
    if name == "records":
        key = filters.text_key_expr(pl.col("text"))
        leak_key = key if leakage == "drop" else pl.concat_str([pl.col("lang"), pl.col("dataset"), key], separator="\x1f")
        return parsed.select(
            *RECORD_FIELDS, "text", "text_label", "source", "line", text_key=key, leak_key=leak_key
        ).to_pandas(use_pyarrow_extension_array=True)
    if name == "entities":
        return filters.entity_rows(parsed, keep=_KEEP).drop("_row").to_pandas(use_pyarrow_extension_array=True)
    raise ValueError(f"unknown suite view {name!r} (known: {', '.join(VIEWS)})")


def build(files: Mapping[str, str | Path], views: set[str], leakage: str = "drop") -> dict[str, pd.DataFrame]:
    """The requested views over ``files`` at once (for tools and tests; the runner holds one view at a time)."""
    unknown = views - set(VIEWS)
    if unknown:
        raise ValueError(f"unknown suite view(s): {', '.join(sorted(unknown))}")
    parsed = parse(files)
    return {name: view(parsed, name, leakage) for name in VIEWS if name in views}
