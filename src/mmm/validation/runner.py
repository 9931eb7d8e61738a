"""Run the stored GX suites over the checks listed in params; the pipeline's quality gate.

Suites are read from the file context in ``gx/`` (after registering the custom expectations,
and refusing a suite that loads with fewer expectations than its JSON stores). Validation runs
in an ephemeral context whose stores live in memory and whose data docs site writes under the
reports folder, so a run leaves nothing behind in ``gx/``. Rules the filter params waived
(``mmm.validation.waivers``) are applied to the run's copies of the suites, never to ``gx/``, and
reported as what the gate did not check.
"""

from __future__ import annotations

import json
import logging
import os
import gc
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmm import publish
from mmm.config import ValidateConfig
from mmm.errors import MMMError
from mmm.io import write_json
from mmm.validation import gate
from mmm.validation import suites as suites_mod
from mmm.validation import views
from mmm.validation import waivers as waivers_mod
from mmm.validation.waivers import Waiver

DOCS_SITE = "mmm_reports"


class GateFailed(MMMError):
    """At least one expectation failed: the data must not go on to training."""


class SuiteError(MMMError, RuntimeError):
    """A stored suite is missing, unreadable, or lost expectations on load."""


@dataclass(frozen=True)
class Outcome:
    """One expectation's verdict, in the terms a user needs to act on it."""

    check: str
    suite: str
    rule: str
    expectation: str
    success: bool
    unexpected: int | None = None
    evaluated: int | None = None
    first_ids: tuple[str, ...] = ()
    error: str | None = None
    observed: Any = None

    def describe(self) -> str:
        where = f"{self.check}/{self.suite}: rule {self.rule}: {self.expectation}"
        if self.error:
            return f"{where}: ERROR {self.error}"
        if self.unexpected is not None:
            ids = f"; first ids: {', '.join(self.first_ids)}" if self.first_ids else ""
            return f"{where}: {self.unexpected} of {self.evaluated} rows fail{ids}"
        return f"{where}: observed {self.observed!r}"


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    waived: dict[str, Waiver] = field(default_factory=dict)  # suite rule -> what the filter params waived
    unchecked: dict[str, dict[str, int]] = field(default_factory=dict)  # check -> waived rule -> rows it skipped

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def success(self) -> bool:
        return not self.failures

    def describe(self) -> str:
        head = (
            f"validate: {'passed' if self.success else 'FAILED'}: {len(self.outcomes) - len(self.failures)} of "
            f"{len(self.outcomes)} expectations hold over {len(self.rows)} check(s) "
            f"({', '.join(f'{k} {v} rows' for k, v in self.rows.items())})"
        )
        return "\n".join([head, *map(self._describe_waiver, self.waived.values()), *(f"  {o.describe()}" for o in self.failures)])

    def _describe_waiver(self, waiver: Waiver) -> str:
        rows = [f"{check} {rules[waiver.rule]} rows" for check, rules in self.unchecked.items() if waiver.rule in rules]
        return (f"  not checked (waived by filter params): rule {waiver.rule} for lang {', '.join(waiver.langs)} "
                f"(filter.items: {', '.join(waiver.items)}): {', '.join(rows) or 'no check runs it'}")

    def metrics(self) -> dict[str, Any]:
        per_check: dict[str, Any] = {}
        for name, rows in self.rows.items():
            mine = [o for o in self.outcomes if o.check == name]
            per_check[name] = {
                "rows": rows,
                "expectations": len(mine),
                "failed": sum(not o.success for o in mine),
                "unchecked": self.unchecked.get(name, {}),
            }
        return {"expectations": len(self.outcomes), "failed": len(self.failures), "checks": per_check,
                "waived": self.waived_record()}

    def waived_record(self) -> dict[str, Any]:
        return {rule: waiver.record() for rule, waiver in self.waived.items()}


# ----------------------------------------------------------------------------- suites


def _gx():
    """Import GX quietly and register the custom expectations before anything loads a suite."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # hundreds of INFO lines otherwise
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # GX would phone home unless told not to
    import great_expectations as gx

    from mmm.validation import expectations  # noqa: F401  (registration side effect)

    return gx


def write_suites(gx_dir: str | Path) -> list[Path]:
    _gx()
    return suites_mod.write_suites(gx_dir)


def load_suites(gx_dir: str | Path, names: set[str]):
    """The named suites from the file context; ``SuiteError`` if one is missing or lost expectations."""
    gx = _gx()
    if not (Path(gx_dir) / "great_expectations.yml").exists():
        raise SuiteError(f"{gx_dir} is not a GX file context (no great_expectations.yml)")
    context = gx.get_context(mode="file", context_root_dir=str(gx_dir))
    loaded = {}
    for name in sorted(names):
        path = suites_mod.suite_path(gx_dir, name)
        if not path.exists():
            raise SuiteError(f"suite {name!r} not found: {path} does not exist")
        stored = json.loads(path.read_text(encoding="utf-8"))["expectations"]
        suite = context.suites.get(name)
        if len(suite.expectations) < len(stored):
            kept = {e.expectation_type for e in suite.expectations}
            dropped = sorted({e["type"] for e in stored} - kept)
            raise SuiteError(
                f"suite {name!r} loaded {len(suite.expectations)} of {len(stored)} stored expectations; "
                f"GX dropped unknown type(s) {', '.join(dropped) or '?'} (register them before loading)"
            )
        if "view" not in suite.meta:
            raise SuiteError(f"suite {name!r} has no meta.view (one of {', '.join(suites_mod.VIEWS)})")
        loaded[name] = suite
    return loaded


# ----------------------------------------------------------------------------- running


def _ephemeral_context(gx, docs_dir: Path):
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={DOCS_SITE: site},
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _describe_expectation(config: dict[str, Any]) -> str:
    kwargs = config.get("kwargs", {})
    if "column_A" in kwargs:
        target = f"{kwargs['column_A']}, {kwargs['column_B']}"
    else:
        target = kwargs.get("column") or ", ".join(kwargs.get("column_list", []))
    extra = f", lang={kwargs['lang']}" if "lang" in kwargs else ""
    condition = kwargs.get("row_condition")
    where = f" where {_condition_text(condition)}" if condition else ""
    return f"{config['type']}({target}{extra}){where}"


def _condition_text(condition: Any) -> str:
    if isinstance(condition, dict):
        if condition.get("type") in ("and", "or"):
            return f" {condition['type']} ".join(_condition_text(c) for c in condition["conditions"])
        if "column" in condition:
            return f"{condition['column']['name']} {condition['operator']} {condition['parameter']}"
    return str(condition)


def _first_ids(result: dict[str, Any], limit: int) -> tuple[str, ...]:
    ids = []
    for item in result.get("partial_unexpected_index_list") or result.get("unexpected_index_list") or []:
        if isinstance(item, dict):
            ident = f"{item.get('id')} ({item.get('source')}:{item.get('line')})"
            if ident not in ids:
                ids.append(ident)
        if len(ids) >= limit:
            break
    return tuple(ids)


def _outcome(check: str, suite: str, item: dict[str, Any], first_ids: int) -> Outcome:
    config = item["expectation_config"]
    result = item.get("result") or {}
    exception = item.get("exception_info") or {}
    # GX nests exception info per metric for map expectations, flat for others.
    errors = [exception] if "raised_exception" in exception else list(exception.values())
    raised = [e for e in errors if isinstance(e, dict) and e.get("raised_exception")]
    error = raised[0].get("exception_message") if raised else None
    return Outcome(
        check=check,
        suite=suite,
        rule=(config.get("meta") or {}).get("rule", "?"),
        expectation=_describe_expectation(config),
        success=bool(item["success"]) and error is None,
        unexpected=result.get("unexpected_count"),
        evaluated=result.get("element_count"),
        first_ids=_first_ids(result, first_ids),
        error=error,
        observed=result.get("observed_value"),
    )


def run(config: ValidateConfig, leakage: str = "drop", waived: Mapping[str, Waiver] | None = None) -> Report:
    """Validate every check; write ``results.json`` under ``config.reports``, the data docs under
    ``config.data_docs`` (they carry run times, so they are not a DVC output), the metrics and the gate record.
    ``leakage`` is ``split.leakage``: what the split promises about texts shared by train and test. ``waived``
    (``waivers.from_filter`` of the filter params) limits the expectations of waived rules to the other languages.

    The old gate record goes first, so a run that stops early leaves none; the new one says whether every
    expectation held and holds the sha256 of every file checked, taken before the checks read them. The
    results, metrics and record are published as one set (``mmm.publish``)."""
    checked = [Path(path) for check in config.checks.values() for path in check.files.values()]
    publish.check_distinct({"results": Path(config.reports) / "results.json", "metrics": Path(config.metrics),
                            "gate": Path(config.gate)}, checked)
    gate.clear(config.gate)
    gx = _gx()
    loaded = load_suites(config.gx_dir, {name for check in config.checks.values() for name in check.suites})
    digests = gate.record(config.gate, [path for path in checked if path.is_file()])  # a missing one fails below
    reports_dir = Path(config.reports)
    docs_dir = Path(config.data_docs)
    if docs_dir.exists():
        shutil.rmtree(docs_dir)
    context = _ephemeral_context(gx, docs_dir.resolve())
    source = context.data_sources.add_pandas("mmm")
    result_format = {
        "result_format": config.result_format,
        "unexpected_index_column_names": list(views.INDEX_COLUMNS),
        "partial_unexpected_count": max(config.first_ids, 20),
        "return_unexpected_index_query": False,
    }
    waived = dict(waived or {})
    report = Report(waived=waived)
    documents: dict[str, dict[str, Any]] = {}
    for check_name, check in config.checks.items():
        parsed = views.parse(check.files)
        report.rows[check_name] = parsed.height
        asset = source.add_dataframe_asset(name=check_name)
        frame, frame_view = None, None  # one view in memory at a time: rebuilt when the next suite needs another
        for name in check.suites:
            stored = loaded[name]
            view = stored.meta["view"]
            if view != frame_view:
                frame = frame_view = None
                gc.collect()
                frame, frame_view = views.view(parsed, view, leakage), view
            for rule in sorted({(e.meta or {}).get("rule") for e in stored.expectations} & set(waived)):
                skipped = int(frame["lang"].isin(waived[rule].langs).sum())
                report.unchecked.setdefault(check_name, {})[rule] = skipped
            suite = context.suites.add(
                gx.ExpectationSuite(
                    name=f"{check_name}.{name}",
                    expectations=[waivers_mod.applied(e, waived) for e in stored.expectations],
                    meta=dict(stored.meta),
                )
            )
            batch = asset.add_batch_definition_whole_dataframe(f"{name}.{view}")
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(name=f"{check_name}.{name}", data=batch, suite=suite)
            )
            result = definition.run(batch_parameters={"dataframe": frame}, result_format=result_format)
            document = _without_run_times(result.to_json_dict())
            documents.setdefault(check_name, {})[name] = document
            report.outcomes.extend(_outcome(check_name, name, item, config.first_ids) for item in document["results"])
            del result, definition, batch
        del frame, parsed  # before the next check reads its files: peak memory is one check's rows and one view
        gc.collect()
    context.build_data_docs(site_names=[DOCS_SITE])
    targets = {"results": reports_dir / "results.json", "metrics": config.metrics, "gate": config.gate}
    with publish.outputs(targets, inputs=checked) as out:
        write_json(out["results"], {"success": report.success, "waived": report.waived_record(), "checks": documents})
        write_json(out["metrics"], report.metrics())
        gate.write(out["gate"], report.success, digests)
    return report


RUN_TIME_KEYS = {"run_id", "validation_id", "validation_time", "run_time", "checkpoint_id", "batch_markers",
                 "active_batch_definition"}


def _without_run_times(document: dict[str, Any]) -> dict[str, Any]:
    """The result without what differs between runs of the same data (time stamps, the random ids GX gives the
    expectations of a suite it rebuilds each run), so the same data gives the same results.json."""
    meta = {k: v for k, v in (document.get("meta") or {}).items() if k not in RUN_TIME_KEYS}
    results = [
        {**item, "expectation_config": {k: v for k, v in item["expectation_config"].items() if k != "id"}}
        if isinstance(item.get("expectation_config"), dict) else item
        for item in document.get("results", [])
    ]
    return {**document, "meta": meta, "results": results}
