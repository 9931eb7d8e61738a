"""The translation methods by name (``translate.method`` in params).

A method takes the rows (labels already mapped, or to be translated for open-domain kinds),
the target language, the shared settings and the LLM config, and returns one ``Outcome`` per row
plus the summaries of its LLM calls; the orchestration (``run.py``) does all file I/O, checks
that every row is accounted for and writes the metrics. To add a method, write a module with a
``translate`` function of that signature and register it here.
"""

from __future__ import annotations

from collections.abc import Callable

from mmm.llm import LLMConfig
from mmm.translate import anchored, one_shot
from mmm.translate.types import MethodRun, SourceRow, TranslateSettings

Method = Callable[[list[SourceRow], str, TranslateSettings, LLMConfig], MethodRun]

METHODS: dict[str, Method] = {
    one_shot.NAME: one_shot.translate,
    anchored.NAME: anchored.translate,
}


def get(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown translate.method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]
