"""Translating a file: read and check the rows, run the method, write OUT, FAILED and metrics.

Every input id ends in exactly one of OUT (a translated MMM record in the target language) or
FAILED (the input row plus ``reasons``, the raw ``answer`` and a ``detail``). Both files are
rewritten whole on every run; what makes a rerun cheap is the LLM cache: answered prompts are
replayed, so only failed and missing rows reach the model again.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from mmm import registry
from mmm.io import InputError, Problem, iter_jsonl, read_samples, write_json, write_jsonl
from mmm.llm import LLMConfig
from mmm.records import FormatError, Sample
from mmm.translate import methods, quality
from mmm.config import TranslateConfig
from mmm.translate.types import LabelMode, MethodRun, Outcome, SourceRow, TranslateSettings

log = logging.getLogger(__name__)
LABELS_LANG = "labels_lang"  # field added by the label_map stage: the language the labels are already in


def read_source_rows(path: str | Path, target: str) -> list[SourceRow]:
    """Rows to translate into ``target``; raises ``InputError`` listing every bad row.

    A row's labels must either be rule-mapped to ``target`` already (``labels_lang``) or belong
    to an open-domain kind (TCONER), whose labels the model translates.
    """
    if target not in registry.LANGS:
        raise ValueError(f"unknown target language {target!r}; expected one of {', '.join(registry.LANGS)}")
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
) -> dict[str, Any]:
    """Translate ``input_path`` into ``target``; returns the metrics (also written to ``metrics_path``)."""
    rows = read_source_rows(input_path, target)
    refs = load_references(references, target) if references else None
    method = methods.get(settings.method)
    run = method(rows, target, settings, config) if rows else MethodRun({}, {})
    outcomes = _accounted(rows, run, settings.method)
    write_jsonl(out, (outcomes[r.id].record for r in rows if outcomes[r.id].ok))
    write_jsonl(failed, (_failed_row(r, outcomes[r.id]) for r in rows if not outcomes[r.id].ok))
    metrics = build_metrics(rows, outcomes, run, settings, target, refs)
    if metrics_path is not None:
        write_json(metrics_path, metrics)
    log.info(summary_line(metrics))
    return metrics


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
    failures: Counter = Counter()
    repairs: Counter = Counter(r for o in outcomes.values() if o.ok for r in o.repairs)
    by_dataset: dict[str, dict[str, Any]] = defaultdict(lambda: {"input": 0, "translated": 0, "failed": 0, "failures": Counter()})
    for row in rows:
        outcome = outcomes[row.id]
        cell = by_dataset[row.sample.dataset]
        cell["input"] += 1
        if outcome.ok:
            cell["translated"] += 1
        else:
            cell["failed"] += 1
            cell["failures"].update(outcome.reasons)
            failures.update(outcome.reasons)
    translated = sum(c["translated"] for c in by_dataset.values())
    llm = {name: summary.to_metrics() for name, summary in run.llm.items()}
    requests = sum(m["requests"] for m in llm.values())
    tokens = sum(m["prompt_tokens"] + m["completion_tokens"] + m["cached_prompt_tokens"] + m["cached_completion_tokens"]
                 for m in llm.values())
    metrics: dict[str, Any] = {
        "direction": f"{rows[0].sample.lang}-{target}" if rows else f"?-{target}",
        "method": settings.method,
        "input_rows": len(rows),
        "translated": translated,
        "failed": len(rows) - translated,
        "retention": round(translated / len(rows), 4) if rows else None,
        "failures": dict(sorted(failures.items())),
        "repairs": dict(sorted(repairs.items())),  # on translated rows (see mmm.translate.answer)
        "by_dataset": {
            name: {**cell, "failures": dict(sorted(cell["failures"].items()))}
            for name, cell in sorted(by_dataset.items(), key=lambda kv: registry.DATASETS.index(kv[0]))
        },
        "tokens_per_translated_row": round(tokens / translated, 1) if translated else None,
        "requests_per_translated_row": round(requests / translated, 2) if translated else None,
        "llm": llm,
    }
    if run.stats:
        metrics["method_stats"] = run.stats
    if references is not None:
        done = {i: Sample.from_record(o.record) for i, o in outcomes.items() if o.ok and o.record}
        metrics["quality"] = quality.score(done, references, [r.sample for r in rows])
    return metrics


def summary_line(metrics: dict[str, Any]) -> str:
    reasons = ", ".join(f"{k} {v}" for k, v in metrics["failures"].items())
    line = (f"translate {metrics['direction']} ({metrics['method']}): {metrics['input_rows']} rows -> "
            f"{metrics['translated']} translated, {metrics['failed']} failed" + (f" ({reasons})" if reasons else ""))
    overall = (metrics.get("quality") or {}).get(quality.ALL)
    if overall and overall["rows_scored"]:
        line += f"; chrF {overall['chrf']}, entity match {overall['entity_match']}"
    for name, summary in metrics["llm"].items():
        line += (f"; {name}: {summary['cache_hits']} cached, {summary['sent']} sent, "
                 f"{summary['prompt_tokens']}+{summary['completion_tokens']} tokens, ${summary['cost_usd']:.4f}")
        if summary.get("budget_stopped"):
            line += " (stopped by budget; rerun to continue)"
    return line


def settings_for(config: TranslateConfig) -> TranslateSettings:
    """What every method sees of the ``translate`` section; a method's own knobs are ``translate.<method>``."""
    return TranslateSettings(
        method=config.method,
        templates_dir=config.templates,
        max_tokens=config.max_tokens,
        temperature=config.temperature,
        options=config.anchored if config.method == "anchored" else None,
    )
