"""TCONER construction, step 1: Pile-NER-type conversations -> open-domain NER records.

A Pile-NER-type record is a conversation: ``Text: ...``, an acknowledgement, then
``What describes TYPE in the text?`` questions each answered with a JSON list of entities.
The real files repeat a text once per question; Pile-NER-type itself asks several questions per
record. Both are grouped by text, so there is one output record per distinct text.

Nothing is silently altered: tokenised text (``classifier s ,``) is kept as it is; a pair whose
entity does not occur verbatim in the text is dropped *and counted*; malformed answers are
counted per reason. Every input record is accounted for in the report. Ids must be strings, and
one id may not name two different texts (the output would carry two texts under it): both are input
errors naming the file and line of every such record.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmm.io import InputError, Problem, iter_jsonl, read_text
from mmm.records import LABEL_FORBIDDEN, type_problem

TEXT_PREFIX = "Text: "
QUESTION_RE = re.compile(r"^What describes (?P<type>.+?) in the text\?$", re.DOTALL)
EXAMPLES_PER_REASON = 5


@dataclass
class Converted:
    """One distinct text with its entity pairs, before it has a text-level label."""

    id: str
    text: str
    pairs: list[tuple[str, str]] = field(default_factory=list)
    source_ids: list[str] = field(default_factory=list)

    def to_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "lang": "en",
            "dataset": "TCONER",
            "text": self.text,
            "pairs": [list(p) for p in self.pairs],
            "source_ids": self.source_ids,
        }


@dataclass
class ConversionReport:
    """Counts for every input record and every question, with example ids per problem."""

    records: int = 0
    records_without_text: int = 0
    texts: int = 0
    questions: int = 0
    negative_answers: int = 0
    entities: int = 0
    pairs_kept: int = 0
    problems: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, reason: str, where: str, count: int = 1) -> None:
        self.problems[reason] += count
        self.examples.setdefault(reason, [])
        if len(self.examples[reason]) < EXAMPLES_PER_REASON:
            self.examples[reason].append(where)

    def to_metrics(self) -> dict[str, Any]:
        kept_rate = self.pairs_kept / self.entities if self.entities else 0.0
        not_in_text = self.problems.get("entity_not_in_text", 0)
        return {
            "records": self.records,
            "records_without_text": self.records_without_text,
            "texts": self.texts,
            "questions": self.questions,
            "negative_answers": self.negative_answers,
            "entities": self.entities,
            "pairs_kept": self.pairs_kept,
            "entity_in_text_rate": round(1 - not_in_text / self.entities, 4) if self.entities else None,
            "pair_kept_rate": round(kept_rate, 4),
            "problems": dict(sorted(self.problems.items())),
            "examples": self.examples,
        }


def load_located(path: str | Path) -> list[tuple[int, Any]]:
    """``(line, record)`` for every record of a Pile-NER-type file: a JSON array (the published files) or JSONL.

    The reader contract holds (``mmm.io.decode_utf8``: no BOM, valid UTF-8); every invalid JSON line is listed.
    """
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        located = list(iter_jsonl(path))
        problems = [obj for _, obj in located if isinstance(obj, Problem)]
        if problems:
            raise InputError(problems)
        return located
    text = read_text(path)
    try:
        return _array_items(text)
    except json.JSONDecodeError as exc:
        raise InputError([Problem(str(path), exc.lineno, f"invalid JSON ({exc.msg})")]) from exc
    except TypeError:
        raise InputError([Problem(str(path), 1, "expected a JSON array of conversation records")]) from None


def load_conversations(path: str | Path) -> list[dict]:
    """The records of a Pile-NER-type file (``load_located`` without the lines)."""
    return [record for _, record in load_located(path)]


_SPACE = re.compile(r"[ \t\n\r]*")


def _array_items(text: str) -> list[tuple[int, Any]]:
    """The items of a JSON array with the line each starts on; ``TypeError`` if ``text`` is valid JSON but no array."""
    decoder = json.JSONDecoder()
    pos = _SPACE.match(text).end()
    if not text.startswith("[", pos):
        json.loads(text)  # raises JSONDecodeError unless the text is some other JSON value
        raise TypeError("not a JSON array")
    items: list[tuple[int, Any]] = []
    line, counted = 1, 0
    pos = _SPACE.match(text, pos + 1).end()
    closing = text.startswith("]", pos)
    while not closing:
        line, counted = line + text.count("\n", counted, pos), pos
        value, end = decoder.raw_decode(text, pos)
        items.append((line, value))
        pos = _SPACE.match(text, end).end()
        closing = text.startswith("]", pos)
        if not closing:
            if not text.startswith(",", pos):
                raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
            pos = _SPACE.match(text, pos + 1).end()
    if _SPACE.match(text, pos + 1).end() != len(text):
        raise json.JSONDecodeError("Extra data", text, pos + 1)
    return items


def convert(
    records: list[dict],
    report: ConversionReport | None = None,
    origins: list[tuple[str, int]] | None = None,
) -> tuple[list[Converted], ConversionReport]:
    """Group conversations by text and collect ``(type, entity)`` pairs in first-seen order.

    ``origins`` holds each record's ``(file, line)`` (hub rows: ``(id[split], row)``) for errors. An id
    that is not a string, or one id given to two different texts, raises ``InputError`` naming every such
    record (and the line of the other text); the same id repeating the same text is grouped as usual.
    """
    report = report or ConversionReport()
    origins = origins or [("record", index + 1) for index in range(len(records))]
    by_text: dict[str, Converted] = {}
    text_of_id: dict[str, tuple[str, int]] = {}  # explicit id -> (its first text, that record's index)
    problems: list[Problem] = []
    for index, record in enumerate(records):
        report.records += 1
        given = record.get("id") if isinstance(record, dict) else None
        if (wrong := type_problem("id", given)) is not None:
            problems.append(Problem(*origins[index], wrong))
            continue
        rid = given if given is not None else f"record-{index + 1}"
        turns = record.get("conversations") if isinstance(record, dict) else None
        text = _text_of(turns)
        if text is None:
            report.records_without_text += 1
            report.note("no_text_turn", rid)
            continue
        if given is not None:
            first_text, first = text_of_id.setdefault(rid, (text, index))
            if first_text != text:
                where = "{}:{}".format(*origins[first])
                problems.append(Problem(*origins[index], f"id {rid!r} names a different text than at {where}"))
                continue
        item = by_text.get(text)
        if item is None:
            item = by_text[text] = Converted(id=rid, text=text)
        item.source_ids.append(rid)
        _collect_pairs(item, turns, rid, report)
    if problems:
        raise InputError(problems)
    converted = list(by_text.values())
    report.texts = len(converted)
    report.pairs_kept = sum(len(c.pairs) for c in converted)
    return converted, report


def _text_of(turns: Any) -> str | None:
    if not isinstance(turns, list) or not turns or not isinstance(turns[0], dict):
        return None
    value = turns[0].get("value")
    if turns[0].get("from") != "human" or not isinstance(value, str) or not value.startswith(TEXT_PREFIX):
        return None
    text = value[len(TEXT_PREFIX):]
    return text if text.strip() else None


def _collect_pairs(item: Converted, turns: list, rid: str, report: ConversionReport) -> None:
    # turns: text, acknowledgement, then (question, answer) pairs
    for q_turn, a_turn in zip(turns[2::2], turns[3::2]):
        report.questions += 1
        match = QUESTION_RE.match(str(q_turn.get("value", "")).strip()) if isinstance(q_turn, dict) else None
        if match is None:
            report.note("unrecognised_question", rid)
            continue
        entity_type = match.group("type").strip()
        answer = _parse_answer(a_turn.get("value") if isinstance(a_turn, dict) else None)
        if isinstance(answer, str):
            report.note(answer, rid)
            continue
        if not answer:
            report.negative_answers += 1
            continue
        if not entity_type or LABEL_FORBIDDEN.intersection(entity_type):
            report.note("unrepresentable_type", rid, len(answer))
            continue
        for entity in answer:
            report.entities += 1
            _add_pair(item, entity_type, entity, rid, report)


def _add_pair(item: Converted, entity_type: str, entity: str, rid: str, report: ConversionReport) -> None:
    if not entity.strip():
        report.note("empty_entity", rid)
    elif ";" in entity or entity.startswith(":"):
        report.note("unrepresentable_entity", rid)
    elif entity not in item.text:
        report.note("entity_not_in_text", rid)
    elif (entity_type, entity) in item.pairs:
        report.note("duplicate_pair", rid)
    else:
        item.pairs.append((entity_type, entity))


def _parse_answer(value: Any) -> list[str] | str:
    """The answer's entity list, or the name of what is wrong with it."""
    if not isinstance(value, str):
        return "answer_missing"
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return "answer_not_json"
    if not isinstance(parsed, list):
        return "answer_not_a_list"
    if not all(isinstance(v, str) for v in parsed):
        return "answer_non_string_entity"
    return parsed
