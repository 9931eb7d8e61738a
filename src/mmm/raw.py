"""Raw-data loading: the embedded sample, local files in the published layouts, and hub ids.

All sources end as MMM record dicts with stable ids, checked by ``Sample.from_record``;
problems are collected for the whole source and raised together with file and row.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mmm import offline, registry
from mmm.io import InputError, Problem, iter_jsonl, read_records, read_text
from mmm.records import FormatError, Sample, instruction_of
from mmm.scripts import guess_lang

SAMPLE_LANG_DIR = "ja"
PUBLISHED_COLUMNS = ("input", "output")
PUBLISHED_LAYOUT = ("the published MMM layout (assumed, not checked offline) has one row per example with 'input' "
                    "(TEXT/TASK) and 'output' (LABEL/TASK/:WORD;ENTITY...), optionally 'id', 'lang' and 'dataset'")
REFERENCE_DIR = "reference"


def load_sample(root: str | Path, lang: str = SAMPLE_LANG_DIR) -> list[dict]:
    """Records of the embedded sample for one language folder (``ja`` sources or ``reference/en``...)."""
    folder = Path(root) / lang
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise FileNotFoundError(f"no *.jsonl files in {folder}")
    records: list[dict] = []
    problems: list[Problem] = []
    for path in files:
        try:
            records.extend(read_records(path))
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    _check_unique_ids(records, str(folder))
    return records


def load_references(root: str | Path, lang: str) -> list[dict]:
    """Reference translations of the sample (``lang`` is ``en`` or ``zh``)."""
    return load_sample(root, f"{REFERENCE_DIR}/{lang}")


def load_published_file(path: str | Path) -> list[dict]:
    """Load a local file in the published layout (JSONL, JSON array or CSV with ``input``/``output``)."""
    path = Path(path)
    rows = list(_published_rows(path))
    return normalise_rows(rows, source=str(path), default_prefix=path.stem)


def load_hub(dataset_id: str, split: str, allow_network: bool, revision: str | None = None,
             data_files: str | list[str] | None = None) -> list[dict]:
    """Load a Hugging Face dataset id at ``revision`` (or a local folder in the same layout) through ``datasets``.

    ``data_files`` (globs inside the dataset) reads only the matching files, as ``split``; without
    it the dataset's own split ``split`` is read. The rows must have the columns of
    ``PUBLISHED_LAYOUT``; missing ones are named in one error.

    ``allow_network`` (params ``hub.allow_network``) sets the Hugging Face offline switches first
    (``mmm.offline``): ``datasets`` contacts the hub even for local folders unless they are set.
    """
    offline.allow_hub(allow_network)
    import datasets  # heavy import, only on this path

    chosen = {} if data_files is None else {"data_files": {split: data_files}}
    data = datasets.load_dataset(dataset_id, split=split, revision=revision, **chosen)
    where = f"{dataset_id}@{revision}" if revision else dataset_id
    source = f"{where}{files_label(data_files)}[{split}]"
    missing = [column for column in PUBLISHED_COLUMNS if column not in data.column_names]
    if missing:
        raise InputError([Problem(source, 0, f"no {' or '.join(map(repr, missing))} column (it has: "
                                             f"{', '.join(data.column_names) or 'none'}); {PUBLISHED_LAYOUT}")])
    rows = ((index + 1, dict(row)) for index, row in enumerate(data))
    prefix = dataset_id.rstrip("/").split("/")[-1]
    return normalise_rows(rows, source=source, default_prefix=f"{prefix}-{split}")


def files_label(data_files: str | list[str] | None) -> str:
    """How a ``data_files`` choice is shown in a source's name: ``:glob[,glob]``, or nothing for every file."""
    if data_files is None:
        return ""
    return ":" + (",".join(data_files) if isinstance(data_files, list) else data_files)


def _published_rows(path: Path) -> Iterable[tuple[int, Any]]:
    """Yield ``(row_number, row)``: JSONL line numbers, CSV line numbers, JSON array positions (1-based)."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from iter_jsonl(path)  # the reader contract: a BOM or invalid UTF-8 names its line
    elif suffix == ".json":
        try:
            data = json.loads(read_text(path))
        except json.JSONDecodeError as exc:
            raise InputError([Problem(str(path), exc.lineno, f"invalid JSON ({exc.msg})")]) from exc
        if isinstance(data, dict):
            data = next((data[k] for k in ("data", "train", "test", "rows") if isinstance(data.get(k), list)), None)
        if not isinstance(data, list):
            raise InputError([Problem(str(path), 1, "expected a JSON array of rows (or an object with a 'data' list)")])
        yield from enumerate(data, start=1)
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
        for row in reader:
            yield reader.line_num, row
    else:
        raise InputError([Problem(str(path), 0, f"unsupported file type {suffix!r} (use .jsonl, .json or .csv)")])


def normalise_rows(rows: Iterable[tuple[int, Any]], source: str, default_prefix: str) -> list[dict]:
    """Turn published rows (``input``/``output`` plus optional ``id``/``lang``/``dataset``) into records."""
    records: list[dict] = []
    problems: list[Problem] = []
    for number, row in rows:
        if isinstance(row, Problem):
            problems.append(row)
            continue
        try:
            records.append(_normalise(row, f"{default_prefix}-{number:06d}"))
        except (FormatError, KeyError, TypeError, ValueError) as exc:
            problems.append(Problem(source, number, str(exc)))
    if problems:
        raise InputError(problems)
    _check_unique_ids(records, source)
    return records


def _normalise(row: Any, default_id: str) -> dict:
    if not isinstance(row, dict):
        raise FormatError(f"expected an object with 'input' and 'output', got {type(row).__name__}")
    missing = [f for f in ("input", "output") if not isinstance(row.get(f), str) or not row.get(f)]
    if missing:
        raise FormatError(f"missing field(s): {', '.join(missing)}")
    record = {
        "id": str(row.get("id") or default_id),
        "lang": row.get("lang") or guess_lang(row["input"]),
        "dataset": row.get("dataset") or infer_dataset(row["input"], row["output"], row.get("lang")),
        "input": row["input"],
        "output": row["output"],
    }
    Sample.from_record(record)
    return record


def infer_dataset(input_: str, output: str, lang: str | None = None) -> str:
    """The sub-dataset of a published row that carries no ``dataset`` column.

    The instruction word decides, except ``NER``: SCNM when the text label is in SCNM's
    inventory for the row's language, TCONER otherwise.
    """
    word = instruction_of(input_)
    if word is None:
        raise FormatError("input does not end with any known instruction word (e.g. '/NER')")
    owners = [k for k in registry.kinds() if word in k.instructions]
    if len(owners) == 1:
        return owners[0].name
    label = output.split("/", 1)[0]
    scnm = registry.kind("SCNM")
    lang = lang or guess_lang(input_)
    return "SCNM" if label in scnm.text_labels.get(lang, ()) else "TCONER"


def _check_unique_ids(records: list[dict], source: str) -> None:
    seen: dict[str, int] = {}
    problems = []
    for index, record in enumerate(records, start=1):
        if record["id"] in seen:
            problems.append(Problem(source, index, f"duplicate id {record['id']!r} (first at record {seen[record['id']]})"))
        seen.setdefault(record["id"], index)
    if problems:
        raise InputError(problems)
