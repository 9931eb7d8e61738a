"""Choices of CLI options as enumerations, so ``--help`` lists them and typos are usage errors."""

from __future__ import annotations

from enum import Enum
from typing import Any


class Lang(str, Enum):
    en = "en"
    ja = "ja"
    zh = "zh"


class Method(str, Enum):
    anchored = "anchored"
    one_shot = "one_shot"


class Backend(str, Enum):
    local = "local"
    openai = "openai"
    replay = "replay"


class Mode(str, Enum):
    paper = "paper"
    normalized = "normalized"


class Target(str, Enum):
    auto = "auto"
    joint = "joint"
    text_only = "text_only"
    word_only = "word_only"


class Dtype(str, Enum):
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


def value(choice: Enum | None) -> Any:
    """The plain value of an optional choice (``None`` = flag not given)."""
    return None if choice is None else choice.value
