"""The gate follows the filter params: an expectation of a rule the filter waived skips the rows it no longer governs.

A filter item that leaves a content rule out of ``filter.items.<item>.rules`` keeps the rows that break
it, so the expectation enforcing the same rule (``FILTER_RULES``) is applied only where ``lang`` is not
the language of such an item (a GX ``row_condition`` added to the expectation's own). Rows are matched by
language, not by item, since a record does not say which item it came from: waiving a rule for ``ja``
also leaves ``tconer_ja``'s rows unchecked by the gate (the filter still applied it to them). The stored
suites in ``gx/`` stay complete; the runner applies the waivers to its in-memory copies and records them
in ``results.json`` and the metrics, so the gate says what it did not check.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from great_expectations.expectations.row_conditions import (
    AndCondition,
    Column,
    ComparisonCondition,
    Operator,
)

from mmm import filters
from mmm.config import FilterItem

# filter rule (filters.REASONS, the waivable ones) -> the suite rule (suites.RULES) enforcing it in the gate
FILTER_RULES: dict[str, str] = {"residual_japanese": "residual_japanese", "entity_not_in_text": "entity_in_text"}


@dataclass(frozen=True)
class Waiver:
    """A suite rule not checked for rows in ``langs``, because filter ``items`` waived it."""

    rule: str
    langs: tuple[str, ...]
    items: tuple[str, ...]

    def record(self) -> dict[str, Any]:
        return {"langs": list(self.langs), "filter_items": list(self.items)}


def _applies(filter_rule: str, lang: str) -> bool:
    """Does the filter rule judge rows of ``lang`` at all? (residual Japanese: English and Chinese only)."""
    return filter_rule != "residual_japanese" or lang in filters.RESIDUAL_LANGS


def from_filter(items: Mapping[str, FilterItem]) -> dict[str, Waiver]:
    """Suite rule -> its ``Waiver``, from every filter item's waived rules (a waiver that changes nothing is left out)."""
    found: dict[str, dict[str, list[str]]] = {}
    for name, item in items.items():
        for filter_rule in item.waived:
            if _applies(filter_rule, item.lang):
                found.setdefault(FILTER_RULES[filter_rule], {}).setdefault(item.lang, []).append(name)
    return {
        rule: Waiver(rule, tuple(sorted(langs)), tuple(sorted(n for names in langs.values() for n in names)))
        for rule, langs in sorted(found.items())
    }


def _pinned_lang(condition: Any) -> str | None:
    """The language a row condition pins with ``lang == X`` (alone or in an AND), else None."""
    parts = condition.conditions if isinstance(condition, AndCondition) else [condition]
    for part in parts:
        if isinstance(part, ComparisonCondition) and part.column.name == "lang" and part.operator == Operator.EQUAL:
            return part.parameter
    return None


def applied(expectation: Any, waivers: Mapping[str, Waiver]) -> Any:
    """A copy of ``expectation``; if its ``meta.rule`` is waived, limited to rows outside the waived languages
    (unchanged when its own condition already pins another language; over no rows when it pins a waived one)."""
    result = copy.copy(expectation)
    waiver = waivers.get((expectation.meta or {}).get("rule"))
    own = expectation.row_condition
    if waiver is None or (own is not None and _pinned_lang(own) not in (None, *waiver.langs)):
        return result
    outside = Column("lang").is_not_in(waiver.langs)
    if own is None:
        result.row_condition = outside
    elif isinstance(own, str):
        raise ValueError(f"rule {waiver.rule}: cannot add the waiver to a string row_condition ({own!r})")
    elif isinstance(own, AndCondition):
        result.row_condition = AndCondition(conditions=[*own.conditions, outside])
    else:
        result.row_condition = own & outside
    return result
