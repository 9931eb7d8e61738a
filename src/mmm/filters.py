"""The paper's rule-based filter (Section 3.1), vectorised with polars, with a reason per broken rule.

A translated row is rejected when it breaks any of three rules; ``reasons`` lists every one:

``residual_japanese``
    Japanese left in a translation, checked over the whole ``input`` and ``output`` strings.

    * English output: any kana (hiragana, katakana incl. the prolonged sound mark ー and the
      middle dot ・, half-width katakana), any Han character (BMP blocks and the supplementary
      extensions), or a Japanese mark (々 〆 〻).
    * Chinese output: kana and the marks 々 〆 〻 always count. A Han character counts
      unless it is *encodable in GB2312* (Python's ``gb2312`` codec), the national standard
      character set of simplified Chinese: its 6,763 hanzi are the simplified forms Chinese
      writes, so the codec is a clean membership test. Japanese-only forms (shinjitai and
      kokuji) fall outside it: 駅 込 働 広 沢 雫 are rejected, while 东京站 广州 劳动 pass.
      Known limits: (1) Japanese forms that coincide with a GB2312 character pass (e.g. 浜, an
      obscure Chinese character that is also the Japanese form of 滨); (2) rare but valid
      simplified characters outside GB2312 are rejected (e.g. 镕, 喆, some names); (3) traditional
      characters are rejected too, which is right for a simplified-Chinese target. GBK would not
      help: it encodes every unified ideograph, Japanese forms included.
    * Japanese output (TCONER ja): the rule does not apply.

``entity_not_in_text``
    Every entity (TCREE: the head and the tail) occurs verbatim, case-sensitively, in the text.
    Entities only exist for rows whose format parses, so a ``bad_format`` row is not checked.

``bad_format``
    Exactly the rows ``mmm.records.Sample.from_record`` rejects for their strings: no instruction
    marker (input suffix ``/INSTRUCT`` of the dataset, output ``LABEL/INSTRUCT/``), an empty or
    delimiter-bearing text label, or a word-level part that is neither empty nor a run of
    ``:label;entity`` pairs (TCREE: one ``:head;label;tail``) with no empty field and labels free
    of ``/ : ;``. Pairs split on ``;``; each label runs from the last ``:`` before its ``;``.

Each filter item chooses which content rules reject (``filter.items.<item>.rules``: residual_japanese,
entity_not_in_text; ``bad_format`` always runs, since a row that does not parse cannot be checked further).
A rule not chosen is *waived*: a row breaking only waived rules is kept, and the metrics count it under
``waived`` so the cost of the choice shows in ``dvc metrics diff``. A rejected row's ``reasons`` list only
the chosen rules it breaks.

Structural problems (invalid JSON, missing or non-string record fields, unknown lang or dataset)
are not reasons but input errors: they mean an upstream stage is broken, so the filter stops
and lists every bad line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl

from mmm import publish, registry, scripts
from mmm.config import CONTENT_RULES, FORMAT_RULE
from mmm.errors import ParamsError
from mmm.io import InputError, Problem, check_bom, decode_utf8, write_json
from mmm.records import RECORD_FIELDS, WHITESPACE, type_problem

REASONS: tuple[str, ...] = (*CONTENT_RULES, FORMAT_RULE)  # residual_japanese, entity_not_in_text, bad_format
RESIDUAL_LANGS: tuple[str, ...] = ("en", "zh")
LINE = "_line"  # column holding each row's line number in its file

# A pair part ``:l1;e1:l2;e2`` as ``records._split_pairs`` accepts it: labels are non-empty and free of
# ``/ : ;``; entities are non-empty and free of ``;``; each label starts after the last ``:`` of its chunk.
PAIR_PART = r"^:[^/:;]+;(?:[^;]+:[^/:;]+;)*[^;]+$"
TRIPLE_PART = r"^:[^;]+;[^/:;]+;[^;]+$"  # TCREE ``:head;label;tail``, all non-empty


# ----------------------------------------------------------------------------- residual Japanese


def _class_ranges(char_class: str) -> list[tuple[int, int]]:
    """Code point ranges of a regex class body written as literal characters and ``a-b`` ranges."""
    ranges: list[tuple[int, int]] = []
    i = 0
    while i < len(char_class):
        if i + 2 < len(char_class) and char_class[i + 1] == "-":
            ranges.append((ord(char_class[i]), ord(char_class[i + 2])))
            i += 3
        else:
            ranges.append((ord(char_class[i]), ord(char_class[i])))
            i += 1
    return ranges


def _in_class(char: str, char_class: str) -> bool:
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _class_ranges(char_class))


def in_gb2312(char: str) -> bool:
    """Is ``char`` part of GB2312, the simplified-Chinese character set?"""
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def is_residual_char(char: str, lang: str) -> bool:
    """The per-character definition of residual Japanese in ``lang`` output (see the module doc)."""
    if lang not in RESIDUAL_LANGS:
        return False
    if _in_class(char, scripts.KANA + scripts.JAPANESE_MARKS):
        return True
    if _in_class(char, scripts.HAN_SUPPLEMENTARY):
        return True
    if _in_class(char, scripts.HAN):
        return lang == "en" or not in_gb2312(char)
    return False


def _as_class(codes: Iterable[int]) -> str:
    """Compress sorted code points into a class body of literal characters and ranges."""
    runs: list[list[int]] = []
    for code in codes:
        if runs and runs[-1][1] == code - 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return "".join(chr(lo) if lo == hi else f"{chr(lo)}-{chr(hi)}" for lo, hi in runs)


@lru_cache(maxsize=None)
def residual_pattern(lang: str) -> str | None:
    """A regex (valid in Python ``re`` and polars/Rust) matching one residual-Japanese character; ``None`` for ja.

    Built from ``is_residual_char``'s sets: English takes whole blocks; Chinese enumerates the
    BMP Han blocks once and keeps the code points GB2312 lacks (a few thousand ranges).
    """
    if lang not in RESIDUAL_LANGS:
        return None
    always = scripts.KANA + scripts.JAPANESE_MARKS + scripts.HAN_SUPPLEMENTARY
    if lang == "en":
        return f"[{always}{scripts.HAN}]"
    outside = sorted(
        code
        for lo, hi in _class_ranges(scripts.HAN)
        for code in range(lo, hi + 1)
        if not in_gb2312(chr(code)) and not _in_class(chr(code), scripts.JAPANESE_MARKS)
    )
    return f"[{always}{_as_class(outside)}]"


def residual_japanese(column: pl.Expr, lang: str) -> pl.Expr:
    """True where ``column`` holds residual Japanese for ``lang`` output (always False for ja)."""
    pattern = residual_pattern(lang)
    if pattern is None:
        return pl.lit(False)
    return column.str.contains(pattern).fill_null(False)


def residual_japanese_by_lang(column: pl.Expr, lang: pl.Expr) -> pl.Expr:
    """``residual_japanese`` for frames mixing languages: each row judged by its own ``lang``."""
    expr = pl.lit(False)
    for code in RESIDUAL_LANGS:
        expr = pl.when(lang == code).then(residual_japanese(column, code)).otherwise(expr)
    return expr


# ----------------------------------------------------------------------------- format and entities


def _instruction(input_: pl.Expr, dataset: pl.Expr) -> pl.Expr:
    """The dataset's instruction word the input ends with, else null (``records.split_input``).

    Instruction words contain no ``/``, so ``input`` ends with ``/WORD`` exactly when WORD is the
    part after its last ``/``: one extraction and a set lookup instead of a test per word.
    """
    allowed = [f"{kind.name}\x00{word}" for kind in registry.kinds() for word in kind.instructions]
    suffix = input_.str.extract(r"/([^/]*)$", 1)
    known = pl.concat_str([dataset, suffix], separator="\x00").is_in(allowed)
    return pl.when(known).then(suffix)


def _label_bad(label: pl.Expr) -> pl.Expr:
    """``records.check_label``: labels are non-empty and free of ``/ : ;``."""
    return (label.str.len_chars() == 0) | label.str.contains(r"[/:;]")


def text_key_expr(text: pl.Expr) -> pl.Expr:
    """``records.text_key`` vectorised: NFKC, then every whitespace character removed (the leakage key)."""
    return text.str.normalize("NFKC").str.replace_all(WHITESPACE, "")


def _triples() -> list[str]:
    return [kind.name for kind in registry.kinds() if kind.word_level == "triple"]


def parse(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``text``, ``instruct``, ``text_label``, ``word`` (the word-level part) and ``format_ok``.

    ``format_ok`` is exactly ``Sample.from_record`` succeeding on the strings. Rows that do
    not parse keep whatever parts could be cut (``text_label`` is null for them).
    """
    input_, output, dataset = pl.col("input"), pl.col("output"), pl.col("dataset")
    staged = frame.with_columns(instruct=_instruction(input_, dataset)).with_columns(
        _label=output.str.extract(r"^([^/]*)/", 1),
        _marker="/" + pl.col("instruct") + "/",
    )
    after_label = output.str.slice(pl.col("_label").str.len_chars())
    staged = staged.with_columns(
        _marker_ok=after_label.str.starts_with(pl.col("_marker")).fill_null(False),
        word=after_label.str.slice(pl.col("_marker").str.len_chars()),
    )
    word = pl.col("word")
    is_triple = dataset.is_in(_triples())
    shape = pl.when(is_triple).then(word.str.contains(TRIPLE_PART)).otherwise(word.str.contains(PAIR_PART))
    format_ok = (pl.col("_marker_ok") & ~_label_bad(pl.col("_label")) & ((word == "") | shape)).fill_null(False)
    return staged.with_columns(format_ok=format_ok).with_columns(
        text=input_.str.head(input_.str.len_chars() - pl.col("instruct").str.len_chars() - 1),
        text_label=pl.when(pl.col("format_ok")).then(pl.col("_label")),
    ).drop("_label", "_marker", "_marker_ok")


def _pair_entities(rows: pl.DataFrame, labels: bool) -> pl.DataFrame:
    """Entity rows of *valid* ``:l1;e1:l2;e2`` parts, by flat string rewriting (no per-row work).

    Dropping every ``:label;`` leaves ``;e1;e2``; dropping every ``;entity:`` and the last chunk
    leaves ``:l1;l2``. ``[^:;]*`` and the greedy ``[^;]*:`` pin each label after its chunk's last ``:``.
    """
    word = pl.col("word")
    lists = {"entity": word.str.replace_all(r":[^:;]*;", ";").str.slice(1).str.split(";")}
    if labels:
        lists["label"] = word.str.replace_all(r";[^;]*:", ";").str.replace(r";[^;]*$", "").str.slice(1).str.split(";")
    return rows.with_columns(**lists).explode(*lists)


def _triple_entities(rows: pl.DataFrame, labels: bool) -> pl.DataFrame:
    """Entity rows of valid TCREE ``:head;label;tail`` parts: head and tail, each with the label."""
    fields = pl.col("word").str.slice(1).str.split(";")
    extra = {"label": fields.list.get(1)} if labels else {}
    heads = rows.with_columns(entity=fields.list.get(0), **extra, _pos=pl.lit(0, dtype=pl.UInt8))
    tails = rows.with_columns(entity=fields.list.get(2), **extra, _pos=pl.lit(1, dtype=pl.UInt8))
    return pl.concat([heads, tails]).sort("_row", "_pos").drop("_pos")


def entity_rows(parsed: pl.DataFrame, keep: Iterable[str] = (), labels: bool = True) -> pl.DataFrame:
    """One row per entity (TCREE: head and tail) of the rows that parse, in row order.

    Columns: ``_row`` (index in ``parsed``), ``keep``, ``text``, ``entity`` and, with ``labels``,
    the piece's ``label``.
    """
    columns = [*dict.fromkeys([*keep, "text"])]
    valid = (
        parsed.with_row_index("_row")
        .filter(pl.col("format_ok") & (pl.col("word") != ""))
        .select("_row", *columns, "word", _triple=pl.col("dataset").is_in(_triples()))
    )
    pairs = _pair_entities(valid.filter(~pl.col("_triple")), labels)
    triples = _triple_entities(valid.filter(pl.col("_triple")), labels)
    order = ["_row", *columns, *(["label"] if labels else []), "entity"]
    return pl.concat([pairs.select(order), triples.select(order)]).sort("_row", maintain_order=True)


def entity_missing(parsed: pl.DataFrame) -> pl.Series:
    """Per row: does some entity not occur verbatim in the text? (False for rows that do not parse.)"""
    rows = entity_rows(parsed, labels=False)
    missing = rows.filter(~pl.col("text").str.contains(pl.col("entity"), literal=True))["_row"]
    return pl.int_range(0, parsed.height, dtype=pl.UInt32, eager=True).is_in(missing.unique().implode())


def with_reasons(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` plus ``reasons``: the list (in ``REASONS`` order) of rules each row breaks.

    The residual rule follows each row's own ``lang``; ``frame`` needs the record fields as strings.
    """
    parsed = parse(frame.select("lang", "dataset", "input", "output"))
    both = pl.concat_str([pl.col("input"), pl.col("output")], separator="\n")
    langs = parsed["lang"].unique().to_list()
    # One language (a filter input): one regex pass instead of one per language under when/then.
    residual = residual_japanese(both, langs[0]) if len(langs) == 1 else residual_japanese_by_lang(both, pl.col("lang"))
    flags = parsed.select(
        residual_japanese=residual,
        entity_not_in_text=entity_missing(parsed),
        bad_format=~pl.col("format_ok"),
    )
    none = pl.lit(None, dtype=pl.String)
    reasons = flags.select(
        pl.concat_list([pl.when(pl.col(name)).then(pl.lit(name)).otherwise(none) for name in REASONS]).list.drop_nulls()
    ).to_series()
    return frame.drop("reasons", strict=False).with_columns(reasons=reasons)


# ----------------------------------------------------------------------------- files and statistics


def _empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema={name: pl.String for name in RECORD_FIELDS})


def _line_numbers(data: bytes) -> list[int]:
    """Line number of every non-blank line (polars skips blank ones)."""
    return [n for n, line in enumerate(data.split(b"\n"), start=1) if line.strip()]


# How polars writes a non-string JSON value it read into a string column: a column mixing strings with
# numbers, booleans, arrays or objects comes out as strings (7 -> "7", [1] -> "[1]"), so the frame can
# only say which values look like one; ``type_problems`` confirms them from the file.
_LOOKS_NON_STRING = r"^(?:-?\d[\d.eE+-]*|true|false|\[[\s\S]*\]|\{[\s\S]*\})$"


def non_string_suspects(frame: pl.DataFrame, fields: Iterable[str]) -> pl.Series:
    """Per row (vectorised): may one of ``fields`` have held a non-string JSON value? Nulls are not suspects."""
    checks = []
    for name in fields:
        if name not in frame.columns or frame.schema[name] == pl.Null:
            continue
        column = pl.col(name)
        checks.append(column.str.contains(_LOOKS_NON_STRING) if frame.schema[name] == pl.String else column.is_not_null())
    if not checks:
        return pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True)
    return frame.select(pl.any_horizontal(checks).fill_null(False)).to_series()


def type_problems(path: str | Path, data: bytes, numbers: Iterable[int], fields: Iterable[str]) -> list[Problem]:
    """Parse the lines ``numbers`` of ``data`` and name each field of ``fields`` that is not a string (nor null)."""
    import json

    lines = data.split(b"\n")
    fields = tuple(fields)
    problems = []
    for number in numbers:
        obj = json.loads(lines[number - 1])
        found = [p for name in fields if (p := type_problem(name, obj.get(name)))]
        if found:
            problems.append(Problem(str(path), number, "; ".join(found)))
    return problems


def _syntax_problems(path: Path, data: bytes) -> list[Problem]:
    """Say which lines are not JSON objects or hold non-string record fields (the slow path, only after polars refused)."""
    import json

    problems = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(str(path), number, f"invalid JSON ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(str(path), number, f"expected a JSON object, got {type(obj).__name__}"))
        elif found := [p for name in RECORD_FIELDS if (p := type_problem(name, obj.get(name)))]:
            problems.append(Problem(str(path), number, "; ".join(found)))
    return problems


def read_frame(path: str | Path) -> pl.DataFrame:
    """Read a JSONL file of records into a frame with ``_line`` (line number); record fields come first.

    The reader contract, as ``mmm.io.read_records`` enforces it: a BOM or invalid UTF-8 raises
    ``InputError`` naming the line (``io.decode_utf8``); invalid JSON and record fields holding
    anything but a string raise it naming every bad line. Missing or null record fields become
    nulls (callers decide whether that is an error). Vectorised: polars validates the UTF-8 and
    parses; lines are re-parsed only when it refuses the file or to settle suspect values.
    """
    path = Path(path)
    data = path.read_bytes()
    check_bom(path, data)
    if not data.strip():
        return _empty_frame().with_columns(pl.lit(None, dtype=pl.UInt32).alias(LINE)).clear()
    try:
        frame = pl.read_ndjson(data, infer_schema_length=None)
    except pl.exceptions.PolarsError as exc:
        decode_utf8(path, data)  # polars refuses invalid UTF-8: name its line first
        problems = _syntax_problems(path, data)
        if problems:
            raise InputError(problems) from exc
        raise InputError([Problem(str(path), 0, f"fields of mixed types across rows ({exc})")]) from exc
    physical = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    lines = _line_numbers(data) if physical != frame.height else None  # some lines were blank
    if lines:
        line_column = pl.Series(LINE, lines, dtype=pl.UInt32)
    else:
        line_column = pl.int_range(1, frame.height + 1, dtype=pl.UInt32, eager=True)
    suspects = line_column.filter(non_string_suspects(frame, RECORD_FIELDS))
    if suspects.len():
        problems = type_problems(path, data, suspects.to_list(), RECORD_FIELDS)
        if problems:
            raise InputError(problems)
    for name in RECORD_FIELDS:
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(name))
    extras = [c for c in frame.columns if c not in RECORD_FIELDS]
    return frame.select(*RECORD_FIELDS, *extras).with_columns(line_column.alias(LINE))


def record_problems(frame: pl.DataFrame, path: str | Path, lang: str | None = None) -> list[Problem]:
    """Every row of a ``read_frame`` frame whose record fields are missing, or whose lang/dataset is unknown or not ``lang``."""
    where = str(path)
    known_lang = pl.col("lang").is_in(registry.LANGS)
    rules = {f"missing field {name!r}": pl.col(name).is_null() for name in RECORD_FIELDS}
    rules["unknown lang"] = pl.col("lang").is_not_null() & ~known_lang
    rules["unknown dataset"] = pl.col("dataset").is_not_null() & ~pl.col("dataset").is_in(registry.DATASETS)
    if lang is not None:
        rules[f"lang differs from --lang {lang}"] = known_lang & (pl.col("lang") != lang)
    flagged = frame.select(LINE, "lang", "dataset", **{k: v.fill_null(False) for k, v in rules.items()})
    problems = []
    for row in flagged.filter(pl.any_horizontal(list(rules))).iter_rows(named=True):
        details = []
        for message in (m for m in rules if row[m]):
            if message == "unknown dataset":
                details.append(f"unknown dataset {row['dataset']!r}")
            elif message.startswith(("unknown lang", "lang differs")):
                details.append(f"{message} (got {row['lang']!r})")
            else:
                details.append(message)
        problems.append(Problem(where, row[LINE], "; ".join(details)))
    return problems


WAIVED = "_waived"  # column of the waived rules a row breaks


def waive(judged: pl.DataFrame, waived: Iterable[str]) -> pl.DataFrame:
    """Move the ``waived`` rules out of ``reasons`` (what rejects a row) into the ``WAIVED`` list column."""
    wanted = set(waived)
    names = [name for name in REASONS if name in wanted]
    if FORMAT_RULE in names:
        raise ParamsError(f"{FORMAT_RULE} always runs: it cannot be waived")
    if not names:  # the default: reasons stay as they are
        return judged.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias(WAIVED))
    broken = pl.col("reasons")
    return judged.with_columns(
        reasons=broken.list.eval(pl.element().filter(~pl.element().is_in(names))),
        **{WAIVED: broken.list.eval(pl.element().filter(pl.element().is_in(names)))},
    )


def retention(frame: pl.DataFrame, waived: Iterable[str] = ()) -> dict[str, Any]:
    """Table-2 style counts from a frame with ``dataset`` and ``reasons``: overall and per dataset.

    A row broken in several ways counts once under each of its reasons. With ``waived`` rules (the frame
    then has the ``WAIVED`` column of ``waive``), ``waived`` counts the kept rows that break each of them.
    """
    wanted = set(waived)
    waived = [name for name in REASONS if name in wanted]
    kept = pl.col("reasons").list.len() == 0
    flags = frame.select(
        "dataset",
        kept=kept,
        **{name: pl.col("reasons").list.contains(name) for name in REASONS},
        **{f"waived_{name}": kept & pl.col(WAIVED).list.contains(name) for name in waived},
    )
    sums = [pl.len().alias("input"), pl.col("kept").sum(), *(pl.col(name).sum() for name in REASONS),
            *(pl.col(f"waived_{name}").sum() for name in waived)]
    per_dataset = {row["dataset"]: row for row in flags.group_by("dataset").agg(sums).iter_rows(named=True)}
    overall = flags.select(sums).row(0, named=True)

    def block(counts: dict[str, Any]) -> dict[str, Any]:
        total, kept = int(counts["input"]), int(counts["kept"] or 0)
        return {
            "input": total,
            "kept": kept,
            "kept_pct": round(100.0 * kept / total, 2) if total else 0.0,
            "rejected": total - kept,
            "reasons": {name: int(counts[name] or 0) for name in REASONS},
            "waived": {name: int(counts[f"waived_{name}"] or 0) for name in waived},
        }

    order = [name for name in registry.DATASETS if name in per_dataset]
    return {**block(overall), "datasets": {name: block(per_dataset[name]) for name in order}}


@dataclass(frozen=True)
class FilterResult:
    """What a filter run did: where rows went and the retention statistics."""

    kept: int
    rejected: int
    stats: dict[str, Any]

    def summary(self, lang: str) -> str:
        total = self.kept + self.rejected
        pct = f"{100.0 * self.kept / total:.1f}%" if total else "n/a"
        reasons = ", ".join(f"{name} {self.stats['reasons'][name]}" for name in REASONS)
        waived = ", ".join(f"{name} {count}" for name, count in self.stats["waived"].items())
        kept_anyway = f"; kept under waived rules: {waived}" if waived else ""
        return f"filter {lang}: {total} rows -> {self.kept} kept ({pct}), {self.rejected} rejected ({reasons}){kept_anyway}"


def filter_file(
    input_path: str | Path,
    lang: str,
    kept_path: str | Path,
    rejected_path: str | Path,
    metrics_path: str | Path | None = None,
    rules: Iterable[str] = CONTENT_RULES,
) -> FilterResult:
    """Split ``input_path`` into kept rows and rejected rows (with ``reasons``); write retention metrics.

    ``rules`` are the content rules that reject (``bad_format`` always does); the others are waived,
    only counted. Every row lands in exactly one output, with all its fields (rejected rows add ``reasons``).
    Rows are re-serialised by polars: record fields first, then the others; a field that only
    some rows have comes out as null in the rest. Raises ``InputError`` (nothing written) if any
    row is structurally broken or its ``lang`` is not ``lang``.
    """
    if lang not in registry.LANGS:
        raise ParamsError(f"unknown --lang {lang!r}; expected one of {', '.join(registry.LANGS)}")
    chosen = set(rules)
    if chosen - set(REASONS):
        raise ParamsError(f"unknown filter rule(s) {', '.join(sorted(chosen - set(REASONS)))}; expected some of {', '.join(CONTENT_RULES)}")
    targets = {"kept": kept_path, "rejected": rejected_path, "metrics": metrics_path}
    with publish.outputs(targets, inputs=[input_path]) as out:
        frame = read_frame(input_path)
        problems = record_problems(frame, input_path, lang)
        if problems:
            raise InputError(problems)
        waived = [name for name in CONTENT_RULES if name not in chosen]
        judged = waive(with_reasons(frame).drop(LINE), waived)
        broken = pl.col("reasons").list.len() > 0
        kept = judged.filter(~broken).drop("reasons", WAIVED)
        rejected = judged.filter(broken).drop(WAIVED)
        stats = retention(judged, waived)
        kept.write_ndjson(out["kept"])
        rejected.write_ndjson(out["rejected"])
        if metrics_path is not None:
            write_json(out["metrics"], stats)
    return FilterResult(kept=kept.height, rejected=rejected.height, stats=stats)
