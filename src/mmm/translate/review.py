"""Human review of translated rows (the paper's final manual check), kept as a versioned overrides file.

``export_sheet`` writes one CSV row per source row of a translate item: the Japanese (or English)
source, the translation or why it failed. Reviewers fill ``new_input`` and ``new_output`` to replace
a translation (this also rescues a failed row) or ``drop`` (a reason) to remove it; empty cells keep
the row as it is. ``apply_sheet`` merges the decisions into the item's overrides YAML, which the
translate stage reads and applies after the LLM, so the filter and the gate judge the reviewed rows
like any other. A corrected record must still parse as an MMM record of the row's sub-dataset in the
target language.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmm.io import InputError, Problem, atomic_path, read_rows, write_yaml
from mmm.records import FormatError, Sample
from mmm.translate.types import Outcome, SourceRow

SHEET_COLUMNS = ("id", "dataset", "source_input", "source_output", "input", "output", "status", "new_input",
                 "new_output", "drop")
DROPPED = "dropped_by_review"
OVERRIDES_HEADER = """\
# Human review of one translate item, applied by its translate stage after the LLM (before the filter).
# Edit by hand or merge a filled review sheet with `mmm review apply SHEET --item ITEM`.
#   records: row id -> {input, output}: the corrected translation (also rescues a row that failed)
#   drop:    row id -> why the row is removed
"""


@dataclass(frozen=True)
class Overrides:
    """The reviewed decisions of one item: corrected records and dropped rows, by row id."""

    path: str = ""
    records: dict[str, dict[str, str]] = field(default_factory=dict)
    drop: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None) -> "Overrides":
        """Read an overrides file (``None``: no review); every malformed entry is named at once."""
        if path is None:
            return cls()
        from mmm.errors import require_file

        require_file(path, "translation overrides file")
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        where = str(path)
        if not isinstance(data, dict) or set(data) - {"records", "drop"}:
            raise InputError([Problem(where, 0, "expected a mapping with 'records' and 'drop' only")])
        records, drop = data.get("records") or {}, data.get("drop") or {}
        problems = [Problem(where, 0, f"records: {rid}: expected {{input, output}} strings")
                    for rid, rec in records.items()
                    if not (isinstance(rec, dict) and set(rec) == {"input", "output"} and all(isinstance(v, str) for v in rec.values()))]
        problems += [Problem(where, 0, f"drop: {rid}: expected a reason (text)") for rid, why in drop.items()
                     if not isinstance(why, str) or not why.strip()]
        problems += [Problem(where, 0, f"{rid}: both corrected and dropped") for rid in set(records) & set(drop)]
        if problems:
            raise InputError(problems)
        return cls(where, {str(k): v for k, v in records.items()}, {str(k): v for k, v in drop.items()})

    def __bool__(self) -> bool:
        return bool(self.records or self.drop)


def apply(overrides: Overrides, rows: list[SourceRow], outcomes: dict[str, Outcome], target: str,
          ) -> tuple[dict[str, Outcome], dict[str, int]]:
    """The outcomes with the review applied, and what it changed (``corrected``, ``rescued``, ``dropped``).

    Raises ``InputError`` naming the overrides file for an id that is not a row of this item, or a
    corrected record that does not parse in the target language.
    """
    by_id = {row.id: row for row in rows}
    problems = [Problem(overrides.path, 0, f"{rid}: not a row of this item's input (or not in its sample)")
                for rid in [*overrides.records, *overrides.drop] if rid not in by_id]
    reviewed = dict(outcomes)
    counts = {"corrected": 0, "rescued": 0, "dropped": 0}
    for rid, fields in overrides.records.items():
        if rid not in by_id:
            continue
        record = {"id": rid, "lang": target, "dataset": by_id[rid].sample.dataset, **fields}
        try:
            Sample.from_record(record)
        except FormatError as exc:
            problems.append(Problem(overrides.path, 0, f"{rid}: the corrected record does not parse: {exc}"))
            continue
        counts["corrected" if outcomes[rid].ok else "rescued"] += 1
        reviewed[rid] = Outcome(rid, record=record)
    for rid, reason in overrides.drop.items():
        if rid in by_id:
            counts["dropped"] += 1
            reviewed[rid] = Outcome(rid, reasons=[DROPPED], detail=reason, answer=outcomes[rid].answer)
    if problems:
        raise InputError(problems)
    return reviewed, counts


def sheet_rows(sources: list[dict], translated: list[dict], failed: list[dict]) -> list[dict[str, str]]:
    """One row per source row, in id order: the translation, or the reasons it failed."""
    done = {r["id"]: r for r in translated}
    lost = {r["id"]: r for r in failed}
    rows = []
    for source in sorted(sources, key=lambda r: r["id"]):
        rid = source["id"]
        row = {"id": rid, "dataset": source["dataset"], "source_input": source["input"], "source_output": source["output"]}
        if rid in done:
            row |= {"input": done[rid]["input"], "output": done[rid]["output"], "status": "translated"}
        elif rid in lost:
            row |= {"status": "failed: " + ", ".join(lost[rid].get("reasons") or [])}
        else:
            row |= {"status": "not translated (pending or not sampled)"}
        rows.append(row)
    return rows


def export_sheet(source: str | Path, out: str | Path, failed: str | Path, sheet: str | Path) -> int:
    """Write the review sheet of one translate item; returns its row count."""
    read = lambda path: read_rows(path, dict) if Path(path).exists() else []  # noqa: E731
    rows = sheet_rows(read_rows(source, dict), read(out), read(failed))
    with atomic_path(sheet) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=SHEET_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in SHEET_COLUMNS})
    return len(rows)


def apply_sheet(sheet: str | Path, overrides_path: str | Path) -> dict[str, int]:
    """Merge a filled sheet into the overrides file: ``new_input``+``new_output`` correct, ``drop`` removes."""
    current = Overrides.load(overrides_path) if Path(overrides_path).exists() else Overrides(str(overrides_path))
    records, drop = dict(current.records), dict(current.drop)
    problems: list[Problem] = []
    changes = {"corrected": 0, "dropped": 0}
    with open(sheet, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"id", "new_input", "new_output", "drop"} - set(reader.fieldnames or ())
        if missing:
            raise InputError([Problem(str(sheet), 1, f"missing column(s): {', '.join(sorted(missing))}")])
        for row in reader:
            rid = row["id"].strip()
            new_input, new_output, reason = ((row[c] or "").strip() for c in ("new_input", "new_output", "drop"))
            if (new_input or new_output) and reason:
                problems.append(Problem(str(sheet), reader.line_num, f"{rid}: fill new_input/new_output or drop, not both"))
            elif bool(new_input) != bool(new_output):
                problems.append(Problem(str(sheet), reader.line_num, f"{rid}: a correction needs both new_input and new_output"))
            elif new_input:
                records[rid] = {"input": new_input, "output": new_output}
                drop.pop(rid, None)
                changes["corrected"] += 1
            elif reason:
                drop[rid] = reason
                records.pop(rid, None)
                changes["dropped"] += 1
    if problems:
        raise InputError(problems)
    write_overrides(overrides_path, records, drop)
    return changes


def write_overrides(path: str | Path, records: dict[str, Any], drop: dict[str, str]) -> None:
    write_yaml(path, {"records": dict(sorted(records.items())), "drop": dict(sorted(drop.items()))}, OVERRIDES_HEADER)
