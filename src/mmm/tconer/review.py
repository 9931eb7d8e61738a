"""Human review of TCONER labels: export a sheet, merge the reviewer's edits into the overrides file.

The sheet is CSV (opens in any spreadsheet). Reviewers fill ``new_label`` to correct a label or
``drop`` (any reason text) to remove a record; empty cells mean "keep". ``apply_sheet`` writes the
decisions into the versioned overrides YAML, which the label stage depends on, so a correction
reruns only what depends on TCONER.
"""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

from mmm.io import InputError, Problem, atomic_path, write_yaml
from mmm.records import Sample
from mmm.tconer.label import LabelRules, label_problem

SHEET_COLUMNS = ("id", "text", "entities", "model_label", "label", "status", "new_label", "drop")
OVERRIDES_HEADER = """\
# Human corrections of TCONER text-level labels, applied by the `tconer_label` stage.
# Edit by hand or merge a filled review sheet with `mmm tconer apply-review SHEET`.
#   labels: record id -> the correct open-domain label (also rescues rows the model failed)
#   drop:   record id -> why the record is removed from TCONER
"""


def sheet_rows(records: list[dict], failed: list[dict]) -> list[dict[str, str]]:
    """One row per labelled or failed record, in id order."""
    rows = []
    for record in records:
        sample = Sample.from_record(record)
        rows.append(
            {
                "id": sample.id,
                "text": sample.text,
                "entities": " | ".join(f"{t}: {e}" for t, e in sample.pairs),
                "model_label": record.get("model_label") or "",
                "label": sample.text_label,
                "status": "labelled",
            }
        )
    for row in failed:
        rows.append(
            {
                "id": row["id"],
                "text": row["text"],
                "entities": " | ".join(f"{t}: {e}" for t, e in row.get("pairs", [])),
                "model_label": row.get("model_label") or "",
                "label": "",
                "status": "failed: " + ", ".join(row.get("reasons", [])),
            }
        )
    return sorted(rows, key=lambda r: r["id"])


def write_sheet(path: str | Path, rows: list[dict[str, str]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=SHEET_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in SHEET_COLUMNS})


def export_sheet(records_path: str | Path, failed_path: str | Path, sheet: str | Path) -> int:
    """Write the review sheet of the labelled and failed records; returns its row count."""
    from mmm.io import read_rows

    failed = read_rows(failed_path, dict) if Path(failed_path).exists() else []
    rows = sheet_rows(read_rows(records_path, dict), failed)
    write_sheet(sheet, rows)
    return len(rows)


def apply_sheet(sheet: str | Path, overrides_path: str | Path, rules: LabelRules) -> dict[str, int]:
    """Merge filled ``new_label``/``drop`` cells into the overrides file; returns what changed."""
    data = yaml.safe_load(Path(overrides_path).read_text(encoding="utf-8")) if Path(overrides_path).exists() else {}
    labels: dict[str, str] = dict((data or {}).get("labels") or {})
    drop: dict[str, str] = dict((data or {}).get("drop") or {})
    problems: list[Problem] = []
    changes = {"relabelled": 0, "dropped": 0}
    with open(sheet, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"id", "new_label", "drop"} - set(reader.fieldnames or ())
        if missing:
            raise InputError([Problem(str(sheet), 1, f"missing column(s): {', '.join(sorted(missing))}")])
        for row in reader:
            rid, new_label, reason = row["id"].strip(), (row["new_label"] or "").strip(), (row["drop"] or "").strip()
            if new_label and reason:
                problems.append(Problem(str(sheet), reader.line_num, f"{rid}: fill new_label or drop, not both"))
            elif new_label:
                if problem := label_problem(new_label, rules):
                    problems.append(Problem(str(sheet), reader.line_num, f"{rid}: new_label {new_label!r}: {problem}"))
                    continue
                labels[rid] = new_label
                drop.pop(rid, None)
                changes["relabelled"] += 1
            elif reason:
                drop[rid] = reason
                labels.pop(rid, None)
                changes["dropped"] += 1
    if problems:
        raise InputError(problems)
    write_yaml(overrides_path, {"labels": dict(sorted(labels.items())), "drop": dict(sorted(drop.items()))}, OVERRIDES_HEADER)
    return changes
