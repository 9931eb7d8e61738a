"""What crosses the boundary between the orchestration (``run.py``) and a translation method."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

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
class TokenCap:
    """Per-row answer budget (``max_tokens``), scaled by the source's length.

    Generation on a CPU costs as many steps as the longest row of a batch, and a weak model that
    never stops runs to the cap, so a cap sized to each row (in ``step``-sized buckets, to keep
    batches large) costs far less than one cap sized for the longest row. Answer tokens per
    source character depend on the language pair (and the tokenizer): ``by_direction`` overrides
    ``per_source_char`` for a direction such as ``en-ja``.
    """

    per_source_char: float = 0.9
    by_direction: dict[str, float] = field(default_factory=dict)
    minimum: int = 32
    maximum: int = 160
    step: int = 16

    def __post_init__(self) -> None:
        ratios = [self.per_source_char, *self.by_direction.values()]
        if min(ratios) <= 0 or self.step < 1 or not 1 <= self.minimum <= self.maximum:
            raise ValueError(f"translate.max_tokens: need ratios > 0, step >= 1 and 1 <= min <= max, got {self}")

    @classmethod
    def from_params(cls, section: dict[str, Any] | None) -> "TokenCap":
        section = dict(section or {})
        known = {"per_source_char", "by_direction", "min", "max", "step"}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"translate.max_tokens: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        defaults = cls()
        return cls(
            per_source_char=float(section.get("per_source_char", defaults.per_source_char)),
            by_direction={str(k): float(v) for k, v in (section.get("by_direction") or {}).items()},
            minimum=int(section.get("min", defaults.minimum)),
            maximum=int(section.get("max", defaults.maximum)),
            step=int(section.get("step", defaults.step)),
        )

    def for_sample(self, sample: Sample, target: str) -> int:
        ratio = self.by_direction.get(f"{sample.lang}-{target}", self.per_source_char)
        chars = len(sample.input) + len(sample.output)
        wanted = math.ceil(chars * ratio / self.step) * self.step
        return max(self.minimum, min(self.maximum, wanted))


@dataclass(frozen=True)
class TranslateSettings:
    """The ``translate`` params that every method sees (method-specific knobs live in ``options``)."""

    method: str = "one_shot"
    templates_dir: str = "prompts/translate"
    max_tokens: TokenCap = TokenCap()
    temperature: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
