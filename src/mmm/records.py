"""The MMM record and its string format: the one place that knows ``/``, ``:`` and ``;``.

A record on disk is ``{"id", "lang", "dataset", "input", "output"}`` where

* ``input``  = text + ``/`` + instruction word, e.g. ``...a huge hit./NER``
* ``output`` = text label + ``/`` + instruction word + ``/`` + word-level part, e.g.
  ``Literature/NER/:Person;Marlon Brando:Product Name;On the Waterfront``

The word-level part is a run of ``:label;entity`` pairs (TCREE: one ``:head;label;tail``
triple). Texts and entities may contain ``/`` and ``:`` (URLs, times), so parsing anchors on
what cannot vary: the instruction words are known per dataset, labels never contain ``/``,
``:`` or ``;``, and entities never contain ``;``. Under those rules parsing is exact and
``format -> parse -> format`` is the identity.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mmm import registry
from mmm.errors import MMMError

RECORD_FIELDS: tuple[str, ...] = ("id", "lang", "dataset", "input", "output")
LABEL_FORBIDDEN = frozenset("/:;")
# Whitespace for ``text_key``: one pattern that matches the same characters in Python's ``re`` (``str.isspace``)
# and in polars' regex (Unicode White_Space, which lacks the separators U+001C..U+001F).
WHITESPACE = r"[\s\x1c-\x1f]"
_WHITESPACE_RE = re.compile(WHITESPACE)


class FormatError(MMMError, ValueError):
    """A string or record that breaks the MMM format; the message says what is wrong."""


@dataclass(frozen=True)
class Sample:
    """One MMM sample, parsed. ``pairs`` holds ``(label, entity)`` or ``(head, label, tail)`` tuples."""

    id: str
    lang: str
    dataset: str
    text: str
    instruct: str
    text_label: str
    pairs: tuple[tuple[str, ...], ...] = ()

    @property
    def input(self) -> str:
        return format_input(self.text, self.instruct)

    @property
    def output(self) -> str:
        return format_output(self.text_label, self.instruct, self.pairs)

    def entities(self) -> list[str]:
        """The fields of the pairs that must be spans of the text (entities; TCREE head and tail)."""
        fields = registry.kind(self.dataset).entity_fields()
        return [piece[i] for piece in self.pairs for i in fields if i < len(piece)]

    def word_labels(self) -> list[str]:
        """The label field of every pair."""
        i = registry.kind(self.dataset).label_field
        return [piece[i] for piece in self.pairs if i < len(piece)]

    def to_record(self) -> dict[str, str]:
        return {
            "id": self.id,
            "lang": self.lang,
            "dataset": self.dataset,
            "input": self.input,
            "output": self.output,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Sample":
        """Parse a record dict; raises ``FormatError`` listing every problem found."""
        problems = field_problems(record)
        if problems:
            raise FormatError("; ".join(problems))
        lang, dataset = record["lang"], record["dataset"]
        if lang not in registry.LANGS:
            raise FormatError(f"unknown lang {lang!r}; expected one of {', '.join(registry.LANGS)}")
        if dataset not in registry.DATASETS:
            raise FormatError(f"unknown dataset {dataset!r}; expected one of {', '.join(registry.DATASETS)}")
        text, instruct = split_input(record["input"], dataset)
        text_label, pairs = parse_output(record["output"], dataset, instruct)
        return cls(record["id"], lang, dataset, text, instruct, text_label, pairs)


def text_key(text: str) -> str:
    """The key texts are compared by for duplicates and train/test leakage: Unicode NFKC, then no whitespace.

    NFKC folds compatibility forms (full-width ``ＡＢＣ１２３`` -> ``ABC123``, half-width katakana, the
    ideographic space), and dropping every whitespace character makes ``東京 に`` and ``東京に`` one text.
    ``mmm.filters.text_key_expr`` is the same key for polars frames (the validation gate).
    """
    return _WHITESPACE_RE.sub("", unicodedata.normalize("NFKC", text))


def type_problem(name: str, value: Any) -> str | None:
    """What is wrong with a present, non-null field ``value`` that is not a string (``None`` if nothing)."""
    if value is None or isinstance(value, str):
        return None
    return f"field {name!r} must be a string, got {type(value).__name__}"


def field_problems(record: Mapping[str, Any], fields: Iterable[str] = RECORD_FIELDS) -> list[str]:
    """The reader contract for fields: each of ``fields`` is present and a string (a null counts as missing)."""
    problems = []
    for name in fields:
        value = record.get(name)
        problems.append(f"missing field {name!r}" if value is None else type_problem(name, value))
    return [p for p in problems if p]


def format_input(text: str, instruct: str) -> str:
    return f"{text}/{instruct}"


def format_output(text_label: str, instruct: str, pairs: tuple[tuple[str, ...], ...] | list) -> str:
    """Format the output string, refusing values that could not be parsed back."""
    check_label(text_label, "text label")
    for piece in pairs:
        for value in piece:
            if ";" in value:
                raise FormatError(f"';' inside a word-level field is not representable: {value!r}")
            if not value:
                raise FormatError(f"empty field in word-level piece {piece!r}")
    word = "".join(":" + ";".join(piece) for piece in pairs)
    return f"{text_label}/{instruct}/{word}"


def check_label(label: str, what: str) -> None:
    """Labels must be non-empty and free of the format's delimiters."""
    if not label:
        raise FormatError(f"empty {what}")
    bad = LABEL_FORBIDDEN.intersection(label)
    if bad:
        raise FormatError(f"{what} {label!r} contains {''.join(sorted(bad))!r}")


def split_input(input_: str, dataset: str) -> tuple[str, str]:
    """Split ``text/INSTRUCT`` using the dataset's known instruction words."""
    for word in sorted(registry.kind(dataset).instructions, key=len, reverse=True):
        suffix = "/" + word
        if input_.endswith(suffix):
            return input_[: -len(suffix)], word
    words = " or ".join(repr("/" + w) for w in registry.kind(dataset).instructions)
    raise FormatError(f"input does not end with the instruction {words} of {dataset}")


def instruction_of(input_: str) -> str | None:
    """The instruction word an input ends with, whatever its dataset; ``None`` if none."""
    for word in registry.all_instructions():
        if input_.endswith("/" + word):
            return word
    return None


def parse_output(output: str, dataset: str, instruct: str) -> tuple[str, tuple[tuple[str, ...], ...]]:
    """Parse ``label/INSTRUCT/:l;e:l;e`` into ``(label, pairs)``; strict, raises ``FormatError``."""
    marker = f"/{instruct}/"
    cut = output.find("/")
    if cut < 0 or not output.startswith(marker, cut):
        raise FormatError(f"output lacks the instruction marker {marker!r} after the text label")
    label = output[:cut]
    check_label(label, "text label")
    return label, parse_word_part(output[cut + len(marker):], dataset)


def parse_word_part(word: str, dataset: str) -> tuple[tuple[str, ...], ...]:
    """Parse the word-level part (everything after the output's marker)."""
    if word == "":
        return ()
    if not word.startswith(":"):
        raise FormatError(f"word-level part must start with ':' but starts with {word[:10]!r}")
    kind = registry.kind(dataset)
    if kind.word_level == "triple":
        fields = word[1:].split(";")
        if len(fields) != 3:
            raise FormatError(f"{dataset} word-level part needs ':head;label;tail', got {len(fields)} field(s)")
        pieces: list[tuple[str, ...]] = [tuple(fields)]
    else:
        pieces = _split_pairs(word)
    for piece in pieces:
        if any(not value for value in piece):
            raise FormatError(f"empty field in word-level piece {':' + ';'.join(piece)!r}")
        check_label(piece[kind.label_field], "word-level label")
    return tuple(pieces)


def _split_pairs(word: str) -> list[tuple[str, ...]]:
    """Split ``:l1;e1:l2;e2`` exactly: labels have no ``:``, so each label starts after the last ``:`` before its ``;``."""
    chunks = word.split(";")
    if len(chunks) < 2:
        raise FormatError(f"word-level pair without ';': {word[:40]!r}")
    labels = [chunks[0][1:]]
    entities: list[str] = []
    for chunk in chunks[1:-1]:
        cut = chunk.rfind(":")
        if cut < 0:
            raise FormatError(f"word-level pair has more than one ';' or lacks ':' before {chunk[:40]!r}")
        entities.append(chunk[:cut])
        labels.append(chunk[cut + 1:])
    entities.append(chunks[-1])
    if ":" in labels[0]:
        raise FormatError(f"word-level label {labels[0]!r} contains ':'")
    return list(zip(labels, entities))
