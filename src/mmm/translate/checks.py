"""Checks a parsed translation must pass against its source row, whatever method produced it.

Whether the text is really translated and whether entities occur in it are the filter stage's
rules; these checks cover what only the translation step can know: the structure must survive.

* ``empty_text``: nothing left of the text.
* ``instruction_changed``: a different task word (TCREE: Relation vs Event Extraction).
* ``pair_count_changed``: pairs added or dropped.
* ``label_changed``: a rule-mapped label (text or word level) differs from the mapped one.
  Open-domain rows (TCONER, labels translated by the model) have no such check; their labels
  are only required to be non-empty and free of ``/ : ;``, which the strict parser enforces.
"""

from __future__ import annotations

from mmm.records import Sample
from mmm.translate.types import LabelMode

EMPTY_TEXT = "empty_text"
INSTRUCTION_CHANGED = "instruction_changed"
PAIR_COUNT_CHANGED = "pair_count_changed"
LABEL_CHANGED = "label_changed"


def check_translation(source: Sample, translated: Sample, labels: LabelMode) -> list[str]:
    """Reasons ``translated`` cannot stand for ``source`` (empty when it can)."""
    reasons = []
    if not translated.text.strip():
        reasons.append(EMPTY_TEXT)
    if translated.instruct != source.instruct:
        reasons.append(INSTRUCTION_CHANGED)
    if len(translated.pairs) != len(source.pairs):
        reasons.append(PAIR_COUNT_CHANGED)
    if labels == "mapped":
        text_changed = translated.text_label != source.text_label
        word_changed = len(translated.pairs) == len(source.pairs) and translated.word_labels() != source.word_labels()
        if text_changed or word_changed:
            reasons.append(LABEL_CHANGED)
    return reasons
