"""The MMM expectation suites, built from the registry and the filter's rules.

The suites live as JSON in ``gx/expectations/`` (what GX loads and data docs render); this
module is how they are made, so label inventories and regexes never drift from
``registry.yaml`` and ``mmm.filters``. ``mmm validate --write-suites`` rewrites the JSON and a
test fails while the stored files differ from what this module builds.

Every expectation carries ``meta.rule``, the data-quality rule it enforces, which the runner
prints on failure and by which it applies the filter params' waivers (``mmm.validation.waivers``:
a rule a filter item waived is checked only outside that item's language, in the run's copy of the
suite; the JSON here always holds the complete suites). Every suite carries ``meta.view``, the frame it runs on:

``records``   one row per record: ``id lang dataset input output`` plus parsed ``text``,
              ``text_label``, ``text_key`` (``records.text_key`` of the text: the leakage key) and
              the row's ``source`` (file key) and ``line``.
``entities``  one row per entity of a parsed record (TCREE: head and tail): ``id lang dataset
              text label entity source line``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import great_expectations as gx
from great_expectations.expectations.row_conditions import Column

from mmm import filters, registry
from mmm.records import RECORD_FIELDS
from mmm.validation import expectations as custom

RULES: dict[str, str] = {
    "not_empty": "no null or empty field, no empty file",
    "known_values": "lang and dataset are ones the registry knows",
    "unique_id": "ids are unique within a language",
    "format": "input and output parse as an MMM record",
    "residual_japanese": "no Japanese left in English or Chinese rows",
    "label_inventory": "text- and word-level labels are in the dataset's inventory for the language",
    "entity_in_text": "every entity occurs verbatim in its text",
    "split_disjoint": "no text is in both train and test (text_key: NFKC, whitespace removed; with split.leakage "
                      "keep, within each language and sub-dataset)",
}
VIEWS: tuple[str, ...] = ("records", "entities")
RECORDS_SUITE, ENTITIES_SUITE, SPLIT_SUITE = "mmm_records", "mmm_entities", "mmm_split"
_ID_NAMESPACE = uuid.UUID("5d1e2f8a-6c0b-4f5e-9a57-0b6f3c6b2a10")


def _with_rule(expectation: gx.expectations.Expectation, rule: str) -> gx.expectations.Expectation:
    if rule not in RULES:
        raise KeyError(f"unknown rule {rule!r}")
    expectation.meta = {**(expectation.meta or {}), "rule": rule}
    return expectation


def _closed_domain() -> list[tuple[registry.DatasetKind, str]]:
    return [(kind, lang) for kind in registry.kinds() if not kind.open_domain for lang in registry.LANGS]


def _where(kind: registry.DatasetKind, lang: str):
    return (Column("dataset") == kind.name) & (Column("lang") == lang)


def records_suite() -> gx.ExpectationSuite:
    E = gx.expectations
    items = [
        _with_rule(E.ExpectTableRowCountToBeBetween(min_value=1), "not_empty"),
        *(_with_rule(E.ExpectColumnValuesToNotBeNull(column=name), "not_empty") for name in RECORD_FIELDS),
        *(
            _with_rule(E.ExpectColumnValueLengthsToBeBetween(column=name, min_value=1), "not_empty")
            for name in ("id", "input", "output", "text")
        ),
        _with_rule(E.ExpectColumnValuesToBeInSet(column="lang", value_set=list(registry.LANGS)), "known_values"),
        _with_rule(E.ExpectColumnValuesToBeInSet(column="dataset", value_set=list(registry.DATASETS)), "known_values"),
        _with_rule(E.ExpectCompoundColumnsToBeUnique(column_list=["lang", "id"]), "unique_id"),
        _with_rule(
            custom.ExpectMulticolumnValuesToBeValidMmmRecords(column_list=["dataset", "input", "output"]), "format"
        ),
    ]
    for column in ("input", "output"):
        items.append(
            _with_rule(
                E.ExpectColumnValuesToNotMatchRegex(
                    column=column, regex=filters.residual_pattern("en"), row_condition=Column("lang") == "en"
                ),
                "residual_japanese",
            )
        )
        items.append(
            _with_rule(
                custom.ExpectColumnValuesToHaveNoResidualJapanese(
                    column=column, lang="zh", row_condition=Column("lang") == "zh"
                ),
                "residual_japanese",
            )
        )
    for kind, lang in _closed_domain():
        items.append(
            _with_rule(
                E.ExpectColumnValuesToBeInSet(
                    column="text_label", value_set=list(kind.text_inventory(lang)), row_condition=_where(kind, lang)
                ),
                "label_inventory",
            )
        )
    return gx.ExpectationSuite(name=RECORDS_SUITE, expectations=items, meta={"view": "records"})


def entities_suite() -> gx.ExpectationSuite:
    in_text = custom.ExpectColumnPairValuesToBeEntityInText(column_A="entity", column_B="text")
    items = [_with_rule(in_text, "entity_in_text")]
    for kind, lang in _closed_domain():
        items.append(
            _with_rule(
                gx.expectations.ExpectColumnValuesToBeInSet(
                    column="label", value_set=list(kind.word_inventory(lang)), row_condition=_where(kind, lang)
                ),
                "label_inventory",
            )
        )
    return gx.ExpectationSuite(name=ENTITIES_SUITE, expectations=items, meta={"view": "entities"})


def split_suite() -> gx.ExpectationSuite:
    """Run on the records of train and test together (``source`` = train | test)."""
    items = [
        _with_rule(
            gx.expectations.ExpectColumnDistinctValuesToEqualSet(column="source", value_set=["train", "test"]),
            "not_empty",
        ),
        _with_rule(
            custom.ExpectColumnPairValuesToBeDisjointAcrossGroups(column_A="leak_key", column_B="source"),
            "split_disjoint",
        ),
    ]
    return gx.ExpectationSuite(name=SPLIT_SUITE, expectations=items, meta={"view": "records"})


def build_suites() -> list[gx.ExpectationSuite]:
    return [records_suite(), entities_suite(), split_suite()]


def expectation_signature(config: dict[str, Any]) -> str:
    """What makes two stored expectations the same: type, kwargs and meta (not GX's ids)."""
    return json.dumps({k: config.get(k) for k in ("type", "kwargs", "meta")}, sort_keys=True, ensure_ascii=False)


def suite_document(suite: gx.ExpectationSuite) -> dict[str, Any]:
    """The suite as stored JSON, with ids derived from content so rewriting an unchanged suite is a no-op."""
    document = suite.to_json_dict()
    document["id"] = str(uuid.uuid5(_ID_NAMESPACE, suite.name))
    for item in document["expectations"]:
        item["id"] = str(uuid.uuid5(_ID_NAMESPACE, suite.name + expectation_signature(item)))
    return document


def suite_path(gx_dir: str | Path, name: str) -> Path:
    return Path(gx_dir) / "expectations" / f"{name}.json"


def write_suites(gx_dir: str | Path) -> list[Path]:
    """Write every suite's JSON into the file context at ``gx_dir``; returns the paths."""
    paths = []
    for suite in build_suites():
        path = suite_path(gx_dir, suite.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(suite_document(suite), indent=2, sort_keys=True, ensure_ascii=False)
        path.write_text(text + "\n", encoding="utf-8")
        paths.append(path)
    return paths
