"""Custom GX 1.x expectations for MMM rules that built-in expectations cannot state.

Importing this module registers the classes with GX. It must happen before any suite is
loaded: GX silently drops expectations of unknown types from a loaded suite (the runner also
counts them against the stored JSON). The map metrics compute with polars through
``mmm.filters``, so the gate and the filter share one definition of every rule.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import pandas as pd
import polars as pl
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    ColumnPairMapMetricProvider,
    MulticolumnMapMetricProvider,
    column_condition_partial,
    column_pair_condition_partial,
    multicolumn_condition_partial,
)

from mmm import filters

_PAIR_DOMAIN = ("batch_id", "table", "column_A", "column_B", "row_condition", "condition_parser", "ignore_row_if")
_MULTI_DOMAIN = ("batch_id", "table", "column_list", "row_condition", "condition_parser", "ignore_row_if")


def _strings(series: pd.Series, name: str) -> pl.Series:
    """A pandas column as a polars string Series (nulls kept; other types as their string form)."""
    try:
        values = pl.from_pandas(series)
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        values = pl.Series([None if pd.isna(v) else str(v) for v in series.tolist()], dtype=pl.String)
    return values.cast(pl.String, strict=False).rename(name)


def _mask(values: pl.Series, index: pd.Index) -> pd.Series:
    """A polars bool Series back as a pandas mask aligned with the GX domain's index."""
    return pd.Series(values.fill_null(False).to_numpy().astype(bool), index=index)


# ----------------------------------------------------------------------------- residual Japanese


class ColumnValuesNoResidualJapanese(ColumnMapMetricProvider):
    condition_metric_name = "column_values.mmm_no_residual_japanese"
    condition_value_keys = ("lang",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, lang: str, **kwargs) -> pd.Series:
        values = pl.DataFrame({"v": _strings(column, "v")})
        residual = values.select(filters.residual_japanese(pl.col("v"), lang)).to_series()
        return _mask(~residual, column.index)


class ExpectColumnValuesToHaveNoResidualJapanese(ColumnMapExpectation):
    """Values hold no residual Japanese for ``lang`` output (the filter's rule; zh: Han outside GB2312)."""

    lang: Literal["en", "zh"]

    map_metric = "column_values.mmm_no_residual_japanese"
    success_keys = ("lang", "mostly")
    args_keys = ("column", "lang")
    library_metadata: ClassVar[dict] = {"maturity": "experimental", "tags": ["mmm"], "contributors": ["mmm"]}


# ----------------------------------------------------------------------------- entity in text


class ColumnPairValuesEntityInText(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.mmm_entity_in_text"
    condition_domain_keys = _PAIR_DOMAIN

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, **kwargs) -> pd.Series:
        pair = pl.DataFrame({"entity": _strings(column_A, "entity"), "text": _strings(column_B, "text")})
        found = pair.select(
            (pl.col("entity").str.len_chars() > 0) & pl.col("text").str.contains(pl.col("entity"), literal=True)
        ).to_series()
        return _mask(found, column_A.index)


class ExpectColumnPairValuesToBeEntityInText(ColumnPairMapExpectation):
    """Each entity (``column_A``) is a non-empty, verbatim, case-sensitive substring of its text (``column_B``)."""

    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = "neither"

    map_metric = "column_pair_values.mmm_entity_in_text"
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")
    args_keys = ("column_A", "column_B")
    library_metadata: ClassVar[dict] = {"maturity": "experimental", "tags": ["mmm"], "contributors": ["mmm"]}


# ----------------------------------------------------------------------------- disjoint groups


class ColumnPairValuesDisjointAcrossGroups(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.mmm_disjoint_across_groups"
    condition_domain_keys = _PAIR_DOMAIN

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, **kwargs) -> pd.Series:
        pair = pl.DataFrame({"value": _strings(column_A, "value"), "group": _strings(column_B, "group")})
        groups = pair.select(pl.col("group").n_unique().over("value")).to_series()
        return _mask(groups == 1, column_A.index)


class ExpectColumnPairValuesToBeDisjointAcrossGroups(ColumnPairMapExpectation):
    """No value of ``column_A`` (e.g. ``text_key``) occurs in more than one group of ``column_B`` (e.g. train, test)."""

    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = "neither"

    map_metric = "column_pair_values.mmm_disjoint_across_groups"
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")
    args_keys = ("column_A", "column_B")
    library_metadata: ClassVar[dict] = {"maturity": "experimental", "tags": ["mmm"], "contributors": ["mmm"]}


# ----------------------------------------------------------------------------- MMM format


class MulticolumnValuesValidMmmRecord(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.mmm_valid_record"
    condition_domain_keys = _MULTI_DOMAIN

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs) -> pd.Series:
        dataset, input_, output = (column_list[name] for name in column_list.columns)
        frame = pl.DataFrame(
            {
                "dataset": _strings(dataset, "dataset"),
                "input": _strings(input_, "input"),
                "output": _strings(output, "output"),
            }
        )
        return _mask(filters.parse(frame)["format_ok"], column_list.index)


class ExpectMulticolumnValuesToBeValidMmmRecords(MulticolumnMapExpectation):
    """``column_list`` = [dataset, input, output] parse as an MMM record (the filter's ``bad_format`` rule)."""

    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = "never"

    map_metric = "multicolumn_values.mmm_valid_record"
    success_keys = ("ignore_row_if", "mostly")
    args_keys = ("column_list",)
    library_metadata: ClassVar[dict] = {"maturity": "experimental", "tags": ["mmm"], "contributors": ["mmm"]}


CUSTOM_EXPECTATIONS = (
    ExpectColumnValuesToHaveNoResidualJapanese,
    ExpectColumnPairValuesToBeEntityInText,
    ExpectColumnPairValuesToBeDisjointAcrossGroups,
    ExpectMulticolumnValuesToBeValidMmmRecords,
)

__all__ = ["CUSTOM_EXPECTATIONS", *(cls.__name__ for cls in CUSTOM_EXPECTATIONS)]
