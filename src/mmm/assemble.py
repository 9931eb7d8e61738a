"""Assemble the released MMM dataset from the filtered parts of every language.

Each input is a filter stage's kept file; the output keeps only the record fields, checks that
``(lang, id)`` is unique, and counts rows per language and sub-dataset (the paper's Table 2).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from mmm import publish, registry
from mmm.io import InputError, Problem, read_records, write_json, write_jsonl
from mmm.records import RECORD_FIELDS


def assemble(inputs: list[str | Path]) -> tuple[list[dict], dict[str, Any]]:
    """Concatenate the inputs (record fields only); raise ``InputError`` on a repeated ``(lang, id)``."""
    rows: list[dict] = []
    seen: dict[tuple[str, str], str] = {}
    problems: list[Problem] = []
    per_input: dict[str, int] = {}
    for path in inputs:
        records = read_records(path)
        per_input[str(path)] = len(records)
        for line, record in enumerate(records, start=1):
            key = (record["lang"], record["id"])
            if key in seen:
                problems.append(Problem(str(path), line, f"{key[0]} id {key[1]!r} already came from {seen[key]}"))
                continue
            seen[key] = str(path)
            rows.append({field: record[field] for field in RECORD_FIELDS})
    if problems:
        raise InputError(problems)
    return rows, {"inputs": per_input, "table2": table2(rows)}


def table2(rows: list[dict]) -> dict[str, dict[str, int]]:
    """Rows per language and sub-dataset, every cell present (0 when empty), in the paper's order."""
    counts = Counter((r["lang"], r["dataset"]) for r in rows)
    return {
        lang: {**{ds: counts[(lang, ds)] for ds in registry.DATASETS}, "total": sum(counts[(lang, ds)] for ds in registry.DATASETS)}
        for lang in registry.LANGS
    }


def table2_markdown(table: dict[str, dict[str, int]]) -> str:
    """The Table-2 layout with the paper's counts beside this build's."""
    paper = registry.paper_sizes("translated")
    head = "| language | " + " | ".join(registry.DATASETS) + " | total |"
    rule = "|---" * (len(registry.DATASETS) + 2) + "|"
    lines = ["# MMM dataset size (this build vs. the paper's Table 2)", "", head, rule]
    for lang in registry.LANGS:
        cells = [str(table[lang][ds]) for ds in registry.DATASETS]
        lines.append(f"| {lang} (this build) | " + " | ".join(cells) + f" | {table[lang]['total']} |")
        cells = [str(paper[lang][ds]) for ds in registry.DATASETS]
        lines.append(f"| {lang} (paper) | " + " | ".join(cells) + f" | {sum(paper[lang].values())} |")
    return "\n".join(lines) + "\n"


def run(inputs: list[str], out: str | Path, metrics_path: str | Path, report_path: str | Path) -> dict[str, Any]:
    """Concatenate ``inputs``; publish the dataset, its Table 2 counts and their Markdown as one set."""
    with publish.outputs({"out": out, "metrics": metrics_path, "report": report_path}, inputs=inputs) as paths:
        rows, metrics = assemble(inputs)
        write_jsonl(paths["out"], rows)
        write_json(paths["metrics"], metrics)
        paths["report"].write_text(table2_markdown(metrics["table2"]), encoding="utf-8")
    return metrics
