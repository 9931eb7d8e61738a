"""Zero-shot open NER on third-party data in the Pile-NER-type conversation format (UniversalNER's test files).

A file holds one record per (text, entity type) question: ``Text: ...``, an acknowledgement, then
``What describes TYPE in the text?`` answered with a JSON list of entities. :func:`read_pile_ner`
groups the records by text into :class:`Gold` items (every asked type, its entities as given, an empty
list when none) and the file's label set (the types asked, in first-seen order), so the OIELLM can
answer every type of a text in one pass.

Nothing is dropped from the gold: an entity that is not a span of the text (which the schema mode
could never write) still counts as a miss, and every question that is not read is an ``InputError``
naming the file and line. Scoring (:func:`score`) is entity-level micro P/R/F1 over sets of
``(type, entity)`` per text after a normalisation (:data:`NORMALISERS`).
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmm.io import InputError, Problem
from mmm.split import rank_key
from mmm.tconer.convert import QUESTION_RE, TEXT_PREFIX, load_located


@dataclass
class Gold:
    """One distinct text with the entities of every type asked about it (``[]``: asked, none found)."""

    id: str
    text: str
    entities: dict[str, list[str]] = field(default_factory=dict)
    source_ids: list[str] = field(default_factory=list)

    def pairs(self) -> set[tuple[str, str]]:
        return {(t, e) for t, values in self.entities.items() for e in values}


@dataclass(frozen=True)
class GoldSet:
    """A whole file grouped by text, with its label set (types in first-seen order) and record count."""

    name: str
    items: list[Gold]
    types: tuple[str, ...]
    records: int


def read_pile_ner(path: str | Path) -> GoldSet:
    """Group a Pile-NER-type file by text; raises ``InputError`` listing every record it cannot read."""
    path = Path(path)
    by_text: dict[str, Gold] = {}
    types: dict[str, None] = {}
    problems: list[Problem] = []
    located = load_located(path)
    for line, record in located:
        turns = record.get("conversations") if isinstance(record, dict) else None
        if not isinstance(turns, list) or len(turns) < 4 or len(turns) % 2 or not all(isinstance(t, dict) for t in turns):
            problems.append(Problem(str(path), line, "expected 'conversations': text, acknowledgement, then question/answer turns"))
            continue
        first = turns[0].get("value")
        if not isinstance(first, str) or not first.startswith(TEXT_PREFIX):
            problems.append(Problem(str(path), line, f"the first turn does not start with {TEXT_PREFIX!r}"))
            continue
        text = first[len(TEXT_PREFIX):]
        rid = record.get("id")
        rid = rid if isinstance(rid, str) else f"{path.stem}-{line}"
        gold = by_text.setdefault(text, Gold(id=rid, text=text))
        gold.source_ids.append(rid)
        for question, answer in zip(turns[2::2], turns[3::2]):
            match = QUESTION_RE.match(str(question.get("value", "")).strip())
            entities = _answer(answer.get("value"))
            if match is None or entities is None:
                what = "question" if match is None else "answer (not a JSON list of strings)"
                problems.append(Problem(str(path), line, f"unreadable {what}"))
                continue
            kind = match.group("type").strip()
            types.setdefault(kind, None)
            known = gold.entities.setdefault(kind, [])
            known.extend(e for e in entities if e not in known)
    if problems:
        raise InputError(problems)
    return GoldSet(path.stem, list(by_text.values()), tuple(types), len(located))


def _answer(value: Any) -> list[str] | None:
    try:
        parsed = json.loads(value) if isinstance(value, str) else None
    except json.JSONDecodeError:
        return None
    if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
        return None
    return parsed


def subsample(items: Sequence[Gold], n: int | None, seed: int) -> list[Gold]:
    """At most ``n`` items chosen by a seeded hash of the id (independent of file order), in file order."""
    if n is None or n >= len(items):
        return list(items)
    chosen = set(sorted(range(len(items)), key=lambda i: rank_key(seed, items[i].id))[:n])
    return [g for i, g in enumerate(items) if i in chosen]


def fold_space(value: str) -> str:
    """Whitespace runs as one space, ends stripped; case and punctuation kept (the exact match)."""
    return " ".join(value.split())


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def uniner(value: str) -> str:
    """UniversalNER's ``normalize_answer``: lower case, ASCII punctuation and English articles removed, spaces folded."""
    lowered = "".join(c for c in value.lower() if c not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", lowered).split())


NORMALISERS: dict[str, Callable[[str], str]] = {"exact": fold_space, "uniner": uniner}


@dataclass
class Counts:
    """Micro counts over (type, entity) sets: true positives, predictions, gold entities."""

    correct: int = 0
    predicted: int = 0
    gold: int = 0

    def add(self, predicted: set[tuple[str, str]], gold: set[tuple[str, str]]) -> None:
        self.correct += len(predicted & gold)
        self.predicted += len(predicted)
        self.gold += len(gold)

    def metrics(self) -> dict[str, float | int]:
        p = self.correct / self.predicted if self.predicted else 0.0
        r = self.correct / self.gold if self.gold else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return {"precision": round(100 * p, 2), "recall": round(100 * r, 2), "f1": round(100 * f1, 2),
                "correct": self.correct, "predicted": self.predicted, "gold": self.gold}


def normalised(pairs: Iterable[Sequence[str]], normalise: Callable[[str], str]) -> set[tuple[str, str]]:
    """``(type, entity)`` pairs as a set: types case-folded and space-folded, entities by ``normalise``;
    a pair whose entity normalises to nothing is dropped."""
    out = set()
    for kind, entity in pairs:
        value = normalise(entity)
        if value:
            out.add((fold_space(kind).casefold(), value))
    return out


def score(golds: Sequence[Gold], predictions: Sequence[Sequence[Sequence[str]] | None],
          normalise: Callable[[str], str] = fold_space) -> Counts:
    """Micro counts of ``predictions`` (per gold item: its ``(type, entity)`` pairs, ``None`` = unparseable,
    counted as nothing predicted) against the gold sets."""
    counts = Counts()
    for gold, predicted in zip(golds, predictions, strict=True):
        counts.add(normalised(predicted or (), normalise), normalised(gold.pairs(), normalise))
    return counts


# --- scored with SCNM's closed inventory ------------------------------------------------------------

ORGANIZATION = "organization"  # SCNM's three organisation types, merged (the sets do not tell them apart)
SCNM_TYPES: dict[str, str] = {  # SCNM's English word labels -> the type scored
    "Person": "person", "Location": "location", "Company": ORGANIZATION, "Political Organization": ORGANIZATION,
    "Other Organization": ORGANIZATION, "Facility": "facility", "Product Name": "product", "Event": "event",
}
GOLD_AS_SCNM: dict[str, str] = {  # a data set's own types -> the same scored types; unlisted types are not scored
    "person": "person", "researcher": "person", "musical artist": "person", "writer": "person",
    "location": "location", "country": "location",
    "organisation": ORGANIZATION, "organization": ORGANIZATION, "university": ORGANIZATION, "band": ORGANIZATION,
    "political party": ORGANIZATION,
    "product": "product", "event": "event", "conference": "event",
}


def as_scnm(gold: Gold, predicted: Iterable[Sequence[str]] | None,
            normalise: Callable[[str], str] = fold_space) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """Predicted SCNM pairs and the gold pairs, both as (scored type, entity). Gold entities of a type SCNM has
    no counterpart for are left out, and a predicted entity equal to one of them is ignored (neither right nor
    wrong: the inventory cannot name it)."""
    scored, unscored = set(), set()
    for kind, entity in gold.pairs():
        value = normalise(entity)
        target = GOLD_AS_SCNM.get(fold_space(kind).casefold())
        if value:
            (scored.add((target, value)) if target else unscored.add(value))
    mine = set()
    for kind, entity in predicted or ():
        value = normalise(entity)
        if value and value not in unscored:
            mine.add((SCNM_TYPES.get(kind, kind.casefold()), value))
    return mine, scored


def score_as_scnm(golds: Sequence[Gold], predictions: Sequence[Sequence[Sequence[str]] | None],
                  normalise: Callable[[str], str] = fold_space) -> Counts:
    """Micro counts of SCNM-labelled ``predictions`` against the gold, both mapped by :func:`as_scnm`."""
    counts = Counts()
    for gold, predicted in zip(golds, predictions, strict=True):
        counts.add(*as_scnm(gold, predicted, normalise))
    return counts
