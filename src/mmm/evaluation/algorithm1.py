"""The paper's Algorithm 1 (Appendix C) and equations 1-3, one sample at a time, in plain Python.

This module is the readable reference for the F1 that Table 1 reports. The bulk evaluator in
``mmm.evaluation.scoring`` computes the same numbers with vectorised polars expressions, and the
tests check the two agree on arbitrary strings, so any question about the semantics is answered
here.

Two readings of the pseudo-code are fixed deliberately (the issue spells them out):

* the word-level part is split on ``":"``: the pseudo-code prints ``" : "`` but the published
  data has no spaces around ``:``, so a literal ``" : "`` would leave every output as one piece;
* pieces are stripped *before* empty ones are dropped, so a whitespace-only piece (or an empty
  TCREE remainder) is "nothing generated", not a generated empty tuple ``("",)``.

Labels, pieces and tuples are compared exactly as strings; ``normalize`` is the opt-in
``normalized`` mode, reported apart from paper mode.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Mode = Literal["paper", "normalized"]
Target = Literal["joint", "text_only", "word_only"]
MODES: tuple[str, ...] = ("paper", "normalized")
TARGETS: tuple[str, ...] = ("joint", "text_only", "word_only")
LEVELS: tuple[str, ...] = ("TL", "WL", "ALL")
# What a model trained on each target is scored on (the MRE ablation). Such models print the
# marker too (``label/WORD/`` or ``/WORD/:l;e``), so their outputs are parsed by Algorithm 1
# like the joint model's, a missing marker meaning nothing generated for all of them alike.
TARGET_LEVELS: dict[str, tuple[str, ...]] = {"joint": LEVELS, "text_only": ("TL",), "word_only": ("WL",)}

# Exactly the characters Python's str.strip() removes; the vectorised path strips these too.
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
WHITESPACE_RUN = f"[{WHITESPACE}]+"
# Full-width delimiters found in older Japanese data, and their ASCII forms.
FULL_WIDTH = {"：": ":", "；": ";"}
DELIMITERS = ":;/"
SPACED_DELIMITER = f" ?([{DELIMITERS}]) ?"

Pairs = frozenset[tuple[str, ...]]


def marker_of(instruct: str) -> str:
    """The separator between text label and word-level part: ``/`` + instruction word + ``/``."""
    return f"/{instruct}/"


def split_pieces(word_part: str, keep_whole: bool) -> Pairs:
    """Lines 11-16: split on ``:`` (TCREE: keep whole), strip, drop empties, split each on ``;``."""
    pieces = [word_part] if keep_whole else word_part.split(":")
    stripped = (piece.strip() for piece in pieces)
    return frozenset(tuple(piece.split(";")) for piece in stripped if piece)


def parse_paper(output: str, instruct: str, keep_whole: bool) -> tuple[str, Pairs]:
    """Algorithm 1: ``(text_label, set of tuples)``; ``("", {})`` when the marker is absent."""
    marker = marker_of(instruct)
    if marker not in output:
        return "", frozenset()
    label, rest = output.split(marker, 1)
    return label.strip(), split_pieces(rest, keep_whole)


def normalize(text: str) -> str:
    """``normalized`` mode: ASCII ``:;`` for full-width ones, one space per whitespace run, none beside ``:;/``."""
    for wide, narrow in FULL_WIDTH.items():
        text = text.replace(wide, narrow)
    text = re.sub(WHITESPACE_RUN, " ", text)
    return re.sub(SPACED_DELIMITER, r"\1", text)


@dataclass(frozen=True)
class Counts:
    """The three sizes equations 2 and 3 need: |Real ∩ Generated|, |Generated|, |Real|."""

    tp: int = 0
    generated: int = 0
    real: int = 0

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.tp + other.tp, self.generated + other.generated, self.real + other.real)


def score_sample(gold: tuple[str, Pairs], predicted: tuple[str, Pairs]) -> dict[str, Counts]:
    """TL compares ``{label}`` sets, WL the pair sets, ALL the one element ``(label, pairs)``.

    An empty label is nothing generated (or nothing real), for TL and for the ALL element.
    """
    (gold_label, gold_pairs), (label, pairs) = gold, predicted
    label_hit = bool(label) and label == gold_label
    return {
        "TL": Counts(int(label_hit), int(bool(label)), int(bool(gold_label))),
        "WL": Counts(len(pairs & gold_pairs), len(pairs), len(gold_pairs)),
        "ALL": Counts(int(label_hit and pairs == gold_pairs), int(bool(label)), int(bool(gold_label))),
    }


def micro_prf(counts: Counts) -> tuple[float, float, float]:
    """Equations 1-3 in percent; a zero denominator gives 0 (no generation, nothing to recall)."""
    precision = 100.0 * counts.tp / counts.generated if counts.generated else 0.0
    recall = 100.0 * counts.tp / counts.real if counts.real else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def evaluate_samples(
    rows: Iterable[tuple[str, str, str, bool]], mode: Mode, target: Target
) -> dict[str, tuple[float, float, float]]:
    """Micro P/R/F1 over ``(gold_output, prediction, instruct, keep_whole)`` rows of one sub-dataset.

    The whole loop runs before anything is returned: every row is scored (InstructUIE's evaluator
    returned from inside its loop and so scored only the first item).
    """
    totals = {level: Counts() for level in LEVELS}
    for gold_output, prediction, instruct, keep_whole in rows:
        if mode == "normalized":
            gold_output, prediction = normalize(gold_output), normalize(prediction)
        gold = parse_paper(gold_output, instruct, keep_whole)
        predicted = parse_paper(prediction, instruct, keep_whole)
        for level, counts in score_sample(gold, predicted).items():
            totals[level] = totals[level] + counts
    return {level: micro_prf(totals[level]) for level in TARGET_LEVELS[target]}
