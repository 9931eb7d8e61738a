"""What crosses the boundary between the orchestration (``run.py``) and a translation method."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mmm.config import AnchoredOptions, TokenCap
from mmm.llm import RunSummary
from mmm.records import Sample

LabelMode = Literal["mapped", "translate"]


@dataclass(frozen=True)
class SourceRow:
    """One row to translate.

    ``sample`` holds the labels the translation must carry: already in the target language when
    ``labels == "mapped"`` (rule-based label map), in the source language when ``labels ==
    "translate"`` (open-domain TCONER, where the model translates them). ``record`` is the row as
    read, written back to the FAILED file when the row fails.
    """

    sample: Sample
    labels: LabelMode
    record: dict[str, Any]

    @property
    def id(self) -> str:
        return self.sample.id


@dataclass
class Outcome:
    """How one row ended: ``record`` (the translated MMM record), ``reasons`` why not, or ``pending``.

    ``pending`` (an LLM reason from ``mmm.llm.types.PENDING``: budget, batch_pending) means the
    row is not answered yet because the run stopped on purpose; it is neither translated nor
    failed, and a rerun picks it up.
    """

    id: str
    record: dict[str, Any] | None = None
    reasons: list[str] = field(default_factory=list)
    answer: str | None = None  # the model's raw answer, kept on failed rows for inspection
    detail: str | None = None
    repairs: list[str] = field(default_factory=list)  # deterministic fixes applied to the answer (counted in metrics)
    pending: str | None = None

    @property
    def ok(self) -> bool:
        return self.record is not None and not self.reasons and self.pending is None

    @property
    def failed(self) -> bool:
        return not self.ok and self.pending is None


@dataclass
class MethodRun:
    """A method's result: one ``Outcome`` per row id, and the summary of each LLM call it made."""

    outcomes: dict[str, Outcome]
    llm: dict[str, RunSummary]
    stats: dict[str, Any] = field(default_factory=dict)  # method-specific counts, written as metrics `method_stats`


@dataclass(frozen=True)
class TranslateSettings:
    """The ``translate`` params that every method sees (method-specific knobs live in ``options``)."""

    method: str
    templates_dir: Path
    max_tokens: TokenCap
    temperature: float
    options: AnchoredOptions | None  # the method's own knobs (``translate.<method>``), when it has any
