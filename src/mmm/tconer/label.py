"""TCONER construction, step 2: an open-domain text label from an LLM, then human overrides.

The model's answer is normalised (first line, surrounding quotes and punctuation, case,
whitespace) and refused when empty, too long or holding the format's delimiters. People then
correct labels through a versioned overrides file (``id -> label`` or ``id -> drop reason``);
the stage reports how many labels a person changed, so a correction shows in ``dvc metrics diff``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mmm.errors import MMMError
from mmm.llm import GenParams, LLMConfig, LLMRequest, RunSummary, run_requests
from mmm.records import LABEL_FORBIDDEN, format_input, format_output

INSTRUCT = "NER"
EDGE_PUNCTUATION = "\"'`“”‘’«».,;:!?()[]{}<>*_-–— \t"


@dataclass(frozen=True)
class LabelRules:
    max_words: int
    max_chars: int


@dataclass(frozen=True)
class Overrides:
    """Human decisions: corrected labels and dropped records, by id."""

    labels: dict[str, str]
    drop: dict[str, str]

    @classmethod
    def load(cls, path: str | Path, rules: LabelRules) -> "Overrides":
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        labels = {str(k): str(v) for k, v in (data.get("labels") or {}).items()}
        drop = {str(k): str(v or "dropped by reviewer") for k, v in (data.get("drop") or {}).items()}
        problems = [f"{path}: labels.{k}: {e}" for k, v in labels.items() if (e := label_problem(v, rules))]
        both = sorted(set(labels) & set(drop))
        problems += [f"{path}: {k} is both relabelled and dropped" for k in both]
        if problems:
            raise MMMError(*problems)
        return cls(labels, drop)


def normalise_label(answer: str) -> str:
    """First line of the answer, trimmed of quotes/punctuation, lower-case, single spaces."""
    line = answer.strip().splitlines()[0] if answer.strip() else ""
    line = line.strip(EDGE_PUNCTUATION)
    return re.sub(r"\s+", " ", line).lower()


def label_problem(label: str, rules: LabelRules) -> str | None:
    """Why ``label`` cannot be a TCONER text label, or ``None``."""
    if not label:
        return "empty_label"
    if len(label) > rules.max_chars or len(label.split()) > rules.max_words:
        return "overlong_label"
    if LABEL_FORBIDDEN.intersection(label):
        return "label_has_delimiter"
    return None


def build_requests(rows: list[dict], template: str, max_tokens: int) -> list[LLMRequest]:
    params = GenParams(max_tokens=max_tokens, temperature=0.0, stop=("\n",))
    return [LLMRequest(id=row["id"], prompt=template.replace("{text}", row["text"]), params=params) for row in rows]


def to_record(row: dict, label: str, model_label: str | None) -> dict[str, Any]:
    pairs = [tuple(p) for p in row["pairs"]]
    return {
        "id": row["id"],
        "lang": row.get("lang", "en"),
        "dataset": "TCONER",
        "input": format_input(row["text"], INSTRUCT),
        "output": format_output(label, INSTRUCT, pairs),
        "model_label": model_label,
    }


@dataclass
class Labelled:
    """``label_rows``' result: every row is in exactly one of ``records``, ``failed`` or ``pending``
    (ids not answered yet: budget reached or batch running). ``metrics`` are results only; ``llm``
    is the run's telemetry, for the run log."""

    records: list[dict]
    failed: list[dict]
    pending: dict[str, str]  # id -> reason (mmm.llm.types.PENDING)
    metrics: dict[str, Any]
    llm: RunSummary


def label_rows(
    rows: list[dict],
    config: LLMConfig,
    template: str,
    overrides: Overrides,
    rules: LabelRules,
    max_tokens: int,
) -> Labelled:
    """Label converted rows and apply the overrides. A row whose answer is pending stays pending
    whatever the overrides say: its record (``model_label``) is not known yet."""
    report = run_requests(build_requests(rows, template, max_tokens), config, desc="tconer-label")
    records: list[dict] = []
    failed: list[dict] = []
    pending: dict[str, str] = {}
    reasons: Counter = Counter()
    changed = rescued = 0
    for row in rows:
        result = report.results[row["id"]]
        if result.pending:
            pending[row["id"]] = result.error or ""
            continue
        model_label = normalise_label(result.text) if result.ok else None
        problem = f"llm_{result.error}" if not result.ok else label_problem(model_label or "", rules)
        if row["id"] in overrides.drop:
            failed.append({**row, "model_label": model_label, "reasons": ["dropped_by_reviewer"], "note": overrides.drop[row["id"]]})
            reasons["dropped_by_reviewer"] += 1
            continue
        if row["id"] in overrides.labels:
            label = overrides.labels[row["id"]]
            changed += label != model_label
            rescued += problem is not None
            records.append(to_record(row, label, model_label))
            continue
        if problem:
            failed.append({**row, "model_label": model_label, "raw_answer": result.text, "reasons": [problem]})
            reasons[problem] += 1
            continue
        records.append(to_record(row, model_label, model_label))
    known = {row["id"] for row in rows}
    unknown = sorted((set(overrides.labels) | set(overrides.drop)) - known)
    metrics = {
        "input_rows": len(rows),
        "labelled": len(records),
        "failed": len(failed),
        "pending": len(pending),  # not answered yet (budget, batches running): a rerun continues
        "pending_reasons": dict(sorted(Counter(pending.values()).items())),
        "failures": dict(sorted(reasons.items())),
        "human_changed_labels": changed,
        "human_rescued_rows": rescued,
        "human_dropped_rows": reasons["dropped_by_reviewer"],
        "overrides_for_unknown_ids": unknown,
        "distinct_labels": len({r["output"].split("/", 1)[0] for r in records}),
    }
    return Labelled(records, failed, pending, metrics, report.summary)
