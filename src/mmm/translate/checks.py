"""Checks a parsed translation must pass against its source row, whatever method produced it.

Residual Japanese in English/Chinese and entities missing from the text are the filter stage's
rules; these checks cover what only the translation step can see, because it knows the source:

* ``empty_text``: nothing left of the text.
* ``untranslated``: the text is the source text unchanged, or has no character of the target's
  script (Latin for en; kana or Han for ja; Han for zh). The filter cannot catch a Japanese
  target left in English, so this check is what keeps copied TCONER rows out of TCONER-ja.
* ``instruction_changed``: a different task word (TCREE: Relation vs Event Extraction).
* ``pair_count_changed``: pairs added or dropped.
* ``label_changed``: a rule-mapped label (text or word level) differs from the mapped one.
* ``label_untranslated``: open-domain rows (TCONER), whose labels the model translates, into
  ja/zh: a label came back as its English source, without a single kana or Han character.
  Beyond that, open-domain labels are only required to be non-empty and free of ``/ : ;``,
  which the strict parser enforces.
"""

from __future__ import annotations

import re

from mmm.records import Sample
from mmm.scripts import HAN, HAN_RE, KANA
from mmm.translate.types import LabelMode

EMPTY_TEXT = "empty_text"
UNTRANSLATED = "untranslated"
INSTRUCTION_CHANGED = "instruction_changed"
PAIR_COUNT_CHANGED = "pair_count_changed"
LABEL_CHANGED = "label_changed"
LABEL_UNTRANSLATED = "label_untranslated"

TARGET_SCRIPT = {"en": re.compile("[A-Za-z]"), "ja": re.compile(f"[{KANA}{HAN}]"), "zh": HAN_RE}
CJK_TARGETS = ("ja", "zh")


def check_translation(source: Sample, translated: Sample, labels: LabelMode) -> list[str]:
    """Reasons ``translated`` (its ``lang`` is the target) cannot stand for ``source`` (empty when it can)."""
    reasons = []
    if not translated.text.strip():
        reasons.append(EMPTY_TEXT)
    elif translated.text == source.text or not TARGET_SCRIPT[translated.lang].search(translated.text):
        reasons.append(UNTRANSLATED)
    if translated.instruct != source.instruct:
        reasons.append(INSTRUCTION_CHANGED)
    same_count = len(translated.pairs) == len(source.pairs)
    if not same_count:
        reasons.append(PAIR_COUNT_CHANGED)
    if labels == "mapped":
        if translated.text_label != source.text_label or (same_count and translated.word_labels() != source.word_labels()):
            reasons.append(LABEL_CHANGED)
    elif translated.lang in CJK_TARGETS:
        pairs = list(zip(translated.word_labels(), source.word_labels())) if same_count else []
        copied = [new for new, old in [(translated.text_label, source.text_label), *pairs]
                  if new == old and not TARGET_SCRIPT[translated.lang].search(new)]
        if copied:
            reasons.append(LABEL_UNTRANSLATED)
    return reasons
