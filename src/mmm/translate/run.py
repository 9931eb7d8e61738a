"""Translating a file: read and check the rows, run the method, write OUT, FAILED and metrics.

Every input id ends in exactly one of OUT (a translated MMM record in the target language),
FAILED (the input row plus ``reasons``, the raw ``answer`` and a ``detail``) or pending (not
answered yet: the budget was reached or Batch API results are not in; counted in the metrics,
written nowhere, and the run raises ``IncompleteRun``). Both files are rewritten whole on every
run; what makes a rerun cheap is the LLM cache: answered prompts are replayed, so only failed
and pending rows reach the model again.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmm import publish, registry, runlog
from mmm.config import TranslateConfig
from mmm.errors import IncompleteRun, ParamsError
from mmm.io import (
    InputError,
    Problem,
    iter_jsonl,
    read_samples,
    write_json,
    write_jsonl,
)
from mmm.llm import LLMConfig, pending
from mmm.records import FormatError, Sample
from mmm.translate import methods, quality, review
from mmm.translate.sampling import sample_rows
from mmm.translate.types import (
    LabelMode,
    MethodRun,
    Outcome,
    SourceRow,
    TranslateSettings,
)

log = logging.getLogger(__name__)
LABELS_LANG = "labels_lang"  # field added by the label_map stage: the language the labels are already in


def read_source_rows(path: str | Path, target: str) -> list[SourceRow]:
    """Rows to translate into ``target``; raises ``InputError`` listing every bad row.

    A row's labels must either be rule-mapped to ``target`` already (``labels_lang``) or belong
    to an open-domain kind (TCONER), whose labels the model translates.
    """
    if target not in registry.LANGS:
        raise ParamsError(f"unknown target language {target!r}; expected one of {', '.join(registry.LANGS)}")
    rows: list[SourceRow] = []
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    for number, obj in iter_jsonl(path):
        if isinstance(obj, Problem):
            problems.append(obj)
            continue
        try:
            row = _source_row(obj, target)
        except (FormatError, ValueError, TypeError) as exc:
            problems.append(Problem(str(path), number, str(exc)))
            continue
        if row.id in first_line:
            problems.append(Problem(str(path), number, f"duplicate id {row.id!r} (first on line {first_line[row.id]})"))
            continue
        first_line[row.id] = number
        rows.append(row)
    langs = Counter(r.sample.lang for r in rows)
    if len(langs) > 1:
        problems.append(Problem(str(path), 0, f"rows in several source languages {dict(langs)}; one file, one language"))
    if problems:
        raise InputError(problems)
    return rows


def _source_row(obj: Any, target: str) -> SourceRow:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    sample = Sample.from_record(obj)
    if sample.lang == target:
        raise ValueError(f"row is already in {target}")
    labels_lang = obj.get(LABELS_LANG)
    mode: LabelMode
    if labels_lang is not None:
        if labels_lang != target:
            raise ValueError(f"labels are mapped to {labels_lang!r}, not to the target {target!r}")
        mode = "mapped"
    elif registry.kind(sample.dataset).open_domain:
        mode = "translate"
    else:
        raise ValueError(f"{sample.dataset} labels are not mapped to {target}: run `mmm label-map` first "
                         f"(rows need {LABELS_LANG}: {target})")
    return SourceRow(sample, mode, obj)


def load_references(path: str | Path, target: str) -> dict[str, Sample]:
    return {s.id: s for s in read_samples(path) if s.lang == target}


def translate_file(
    input_path: str | Path,
    target: str,
    out: str | Path,
    failed: str | Path,
    settings: TranslateSettings,
    config: LLMConfig,
    metrics_path: str | Path | None = None,
    references: str | Path | None = None,
    *,
    log_dir: str | Path | None = None,
    log_name: str | None = None,
    sample: Mapping[str, int] | None = None,
    seed: int = 0,
    overrides: str | Path | None = None,
) -> dict[str, Any]:
    """Translate ``input_path`` into ``target``; returns the metrics (also written to ``metrics_path``).

    ``sample`` (sub-dataset -> rows) translates a seeded sample of those sub-datasets only
    (``mmm.translate.sampling``); the rows left out are counted in ``not_sampled``. ``overrides``
    (``mmm.translate.review``) replaces or drops reviewed rows after the LLM, counted in ``review``.

    ``out``, ``failed`` and ``metrics_path`` are published as one set (``mmm.publish``).

    Run telemetry (requests, cache hits, tokens, cost, times) goes to the run log
    ``<log_dir>/<log_name>.json`` (see ``run_log_name`` for the default name), never to the metrics.
    Raises ``IncompleteRun`` after writing everything when rows are pending (budget reached,
    batches still running), so a partial output is never taken for a finished one.
    """
    started = time.perf_counter()
    targets = {"out": out, "failed": failed, "metrics": metrics_path}
    with publish.outputs(targets, inputs=[input_path, references, overrides]) as paths:
        reviewed = review.Overrides.load(overrides)
        rows, not_sampled = sample_rows(read_source_rows(input_path, target), sample, seed)
        refs = load_references(references, target) if references else None
        method = methods.get(settings.method)
        run = method(rows, target, settings, config) if rows else MethodRun({}, {})
        outcomes, review_counts = review.apply(reviewed, rows, _accounted(rows, run, settings.method), target)
        write_jsonl(paths["out"], (outcomes[r.id].record for r in rows if outcomes[r.id].ok))
        write_jsonl(paths["failed"], (_failed_row(r, outcomes[r.id]) for r in rows if outcomes[r.id].failed))
        metrics = build_metrics(rows, outcomes, run, settings, target, refs)
        metrics = {"read_rows": len(rows) + sum(not_sampled.values()), "not_sampled": not_sampled, **metrics}
        if overrides is not None:
            metrics["review"] = review_counts
        if metrics_path is not None:
            write_json(paths["metrics"], metrics)
    telemetry = build_telemetry(run, metrics, time.perf_counter() - started)
    line = summary_line(metrics, telemetry)
    runlog.write(log_dir, log_name or run_log_name(out, metrics_path), {**telemetry, "summary": line})
    log.info(line)
    if metrics["pending"]:
        raise IncompleteRun(line, pending.describe(metrics["pending_reasons"], len(rows), "rows", config, run.llm.values()))
    return metrics


def run_log_name(out: str | Path, metrics_path: str | Path | None) -> str:
    """The run log's name when the caller gives none: the metrics file's stem (the stage writes
    ``metrics/translate_<item>.json``, so the log is ``translate_<item>``), else ``translate_<OUT stem>``.

    OUT's stem alone is ambiguous (``en.jsonl`` and ``tconer/.../zh.jsonl`` vs ``zh.jsonl``), hence the metrics first.
    """
    return Path(metrics_path).stem if metrics_path is not None else f"translate_{Path(out).stem}"


def _accounted(rows: list[SourceRow], run: MethodRun, method: str) -> dict[str, Outcome]:
    """The method's outcomes, refusing a result that loses or invents rows (a bug in the method)."""
    ids = {r.id for r in rows}
    missing, extra = ids - set(run.outcomes), set(run.outcomes) - ids
    if missing or extra:
        raise RuntimeError(f"translate method {method!r} returned no outcome for {len(missing)} row(s) and "
                           f"{len(extra)} unknown id(s); nothing was written")
    return run.outcomes


def _failed_row(row: SourceRow, outcome: Outcome) -> dict[str, Any]:
    return {**row.record, "reasons": list(outcome.reasons), "answer": outcome.answer, "detail": outcome.detail,
            "repairs": list(outcome.repairs)}


def build_metrics(
    rows: list[SourceRow],
    outcomes: dict[str, Outcome],
    run: MethodRun,
    settings: TranslateSettings,
    target: str,
    references: dict[str, Sample] | None,
) -> dict[str, Any]:
    """Results only (same inputs and answers, same metrics): counts, reasons, method stats, quality."""
    failures: Counter = Counter()
    waiting: Counter = Counter()
    repairs: Counter = Counter(r for o in outcomes.values() if o.ok for r in o.repairs)
    by_dataset: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"input": 0, "translated": 0, "failed": 0, "pending": 0, "failures": Counter()})
    for row in rows:
        outcome = outcomes[row.id]
        cell = by_dataset[row.sample.dataset]
        cell["input"] += 1
        if outcome.ok:
            cell["translated"] += 1
        elif outcome.pending is not None:
            cell["pending"] += 1
            waiting[outcome.pending] += 1
        else:
            cell["failed"] += 1
            cell["failures"].update(outcome.reasons)
            failures.update(outcome.reasons)
    translated = sum(c["translated"] for c in by_dataset.values())
    metrics: dict[str, Any] = {
        "direction": f"{rows[0].sample.lang}-{target}" if rows else f"?-{target}",
        "method": settings.method,
        "input_rows": len(rows),
        "translated": translated,
        "failed": sum(c["failed"] for c in by_dataset.values()),
        "pending": sum(waiting.values()),  # not answered yet (budget, batches running): a rerun continues
        "pending_reasons": dict(sorted(waiting.items())),
        "retention": round(translated / len(rows), 4) if rows else None,
        "failures": dict(sorted(failures.items())),
        "repairs": dict(sorted(repairs.items())),  # on translated rows (see mmm.translate.answer)
        "by_dataset": {
            name: {**cell, "failures": dict(sorted(cell["failures"].items()))}
            for name, cell in sorted(by_dataset.items(), key=lambda kv: registry.DATASETS.index(kv[0]))
        },
    }
    if run.stats:
        metrics["method_stats"] = run.stats
    if references is not None:
        done = {i: Sample.from_record(o.record) for i, o in outcomes.items() if o.ok and o.record}
        metrics["quality"] = quality.score(done, references, [r.sample for r in rows])
    return metrics


def build_telemetry(run: MethodRun, metrics: dict[str, Any], wall_time_s: float) -> dict[str, Any]:
    """What the run cost (the run log, not the metrics): each LLM step's summary, per-row rates, time."""
    llm = {name: summary.to_metrics() for name, summary in run.llm.items()}
    requests = sum(m["requests"] for m in llm.values())
    tokens = sum(m["prompt_tokens"] + m["completion_tokens"] + m["cached_prompt_tokens"] + m["cached_completion_tokens"]
                 for m in llm.values())
    translated = metrics["translated"]
    return {
        "direction": metrics["direction"],
        "method": metrics["method"],
        "wall_time_s": round(wall_time_s, 3),
        "rows_per_s": round(metrics["input_rows"] / wall_time_s, 2) if wall_time_s > 0 else None,
        "tokens_per_translated_row": round(tokens / translated, 1) if translated else None,
        "requests_per_translated_row": round(requests / translated, 2) if translated else None,
        "llm": llm,
    }


def summary_line(metrics: dict[str, Any], telemetry: dict[str, Any] | None = None) -> str:
    """One line for the terminal: the results, then (given ``telemetry``) cache hits and throughput."""
    reasons = ", ".join(f"{k} {v}" for k, v in metrics["failures"].items())
    line = (f"translate {metrics['direction']} ({metrics['method']}): {metrics['input_rows']} rows -> "
            f"{metrics['translated']} translated, {metrics['failed']} failed" + (f" ({reasons})" if reasons else ""))
    if metrics["pending"]:
        line += f", {metrics['pending']} pending"
    overall = (metrics.get("quality") or {}).get(quality.ALL)
    if overall and overall["rows_scored"]:
        line += f"; chrF {overall['chrf']}, entity match {overall['entity_match']}"
    if telemetry is None:
        return line
    for name, summary in telemetry["llm"].items():
        line += (f"; {name}: {summary['cache_hits']} cached, {summary['sent']} sent, "
                 f"{summary['prompt_tokens']}+{summary['completion_tokens']} tokens, ${summary['cost_usd']:.4f}")
    return line + f"; {telemetry['wall_time_s']:.1f}s, {telemetry['rows_per_s']} rows/s"


def settings_for(config: TranslateConfig) -> TranslateSettings:
    """What every method sees of the ``translate`` section; a method's own knobs are ``translate.<method>``."""
    return TranslateSettings(
        method=config.method,
        templates_dir=config.templates,
        max_tokens=config.max_tokens,
        temperature=config.temperature,
        options=config.anchored if config.method == "anchored" else None,
    )
