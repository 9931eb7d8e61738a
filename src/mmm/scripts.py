"""Unicode script tests shared by language inference and the residual-Japanese filter."""

from __future__ import annotations

import re

# Hiragana, katakana (incl. phonetic extensions, the prolonged sound mark and half-width forms).
KANA = "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
# CJK unified ideographs (basic block, extension A, compatibility ideographs) and the iteration mark.
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005"

# Japanese-only marks outside the kana blocks: 々 (iteration), 〆 (closing), 〻 (vertical iteration).
JAPANESE_MARKS = "\u3005\u3006\u303b"
# CJK ideographs outside the BMP: extensions B-H and the compatibility supplement.
HAN_SUPPLEMENTARY = "\U00020000-\U000323af"

KANA_RE = re.compile(f"[{KANA}]")
HAN_RE = re.compile(f"[{HAN}]")


def guess_lang(text: str) -> str:
    """``ja`` if the text has kana, ``zh`` if it has Han characters but no kana, else ``en``."""
    if KANA_RE.search(text):
        return "ja"
    if HAN_RE.search(text):
        return "zh"
    return "en"
