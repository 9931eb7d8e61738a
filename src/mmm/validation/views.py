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


def build(files: Mapping[str, str | Path], views: set[str], leakage: str = "drop") -> dict[str, pd.DataFrame]:
    """The requested views (``records``, ``entities``) over ``files``, as pandas frames.

    ``records`` carries ``text_key``, the text as compared for train/test leakage (``records.text_key``:
    NFKC, whitespace removed), so the split gate catches near-duplicates the split itself drops, and
    ``leak_key``, what must not be in both train and test for the split's ``leakage`` mode: the text key
    (``drop``), or the text key within its language and sub-dataset (``keep``).
    """
    if leakage not in ("drop", "keep"):
        raise ValueError(f"unknown leakage mode {leakage!r}")
    parsed = filters.parse(read_sources(files))
    out: dict[str, pd.DataFrame] = {}
    if "records" in views:
        key = filters.text_key_expr(pl.col("text"))
        leak_key = key if leakage == "drop" else pl.concat_str([pl.col("lang"), pl.col("dataset"), key], separator="\x1f")
        out["records"] = parsed.select(
            *RECORD_FIELDS, "text", "text_label", "source", "line", text_key=key, leak_key=leak_key
        ).to_pandas(use_pyarrow_extension_array=True)
    if "entities" in views:
        out["entities"] = filters.entity_rows(parsed, keep=_KEEP).drop("_row").to_pandas(use_pyarrow_extension_array=True)
    unknown = views - {"records", "entities"}
    if unknown:
        raise ValueError(f"unknown suite view(s): {', '.join(sorted(unknown))}")
    return out
