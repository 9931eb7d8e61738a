"""Reading a one-shot answer back into a record: the translated input line, the output marker, the output line.

The prompt ends with the ``answer_input`` marker line, so a good answer looks like::

    Shiomiso ... welcomed a new head chef./NER
    English output:
    Society/NER/:Facility;Shiomiso:Person;Chiyo Murakami

Parsing is strict (``mmm.records``): an answer that does not give exactly one input line, the
marker and an output line that parse as an MMM record of the row's sub-dataset is
``unparseable``; one cut off by the token cap before its output line ended is ``truncated``
(raise ``translate.max_tokens`` rather than fix the prompt).
"""

from __future__ import annotations

from mmm.records import FormatError, Sample
from mmm.translate.template import PromptTemplate

UNPARSEABLE = "unparseable"
TRUNCATED = "truncated"


class AnswerError(ValueError):
    """An answer that yields no record; ``reason`` is ``unparseable`` or ``truncated``."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def split_answer(text: str, template: PromptTemplate, finish_reason: str | None) -> tuple[str, str]:
    """The translated ``(input, output)`` strings of an answer; raises ``AnswerError``."""
    lines = [line.strip() for line in text.split("\n")]
    cut = finish_reason == "length"
    if template.answer_output not in lines:
        raise AnswerError(TRUNCATED if cut else UNPARSEABLE, f"no {template.answer_output!r} line")
    marker = lines.index(template.answer_output)
    before = [line for line in lines[:marker] if line]
    if len(before) != 1:
        raise AnswerError(UNPARSEABLE, f"expected one input line before {template.answer_output!r}, got {len(before)}")
    after = lines[marker + 1:]
    position = next((i for i, line in enumerate(after) if line), None)
    if position is None:
        raise AnswerError(TRUNCATED if cut else UNPARSEABLE, f"nothing after {template.answer_output!r}")
    if cut and position == len(after) - 1:  # the output line is the last thing generated, and it was cut
        raise AnswerError(TRUNCATED, "the answer reached max_tokens inside the output line")
    return before[0], after[position]


def parse_answer(text: str, template: PromptTemplate, source: Sample, finish_reason: str | None = None) -> Sample:
    """The translated record of ``source`` (same id and sub-dataset, target language); raises ``AnswerError``."""
    input_, output = split_answer(text, template, finish_reason)
    record = {"id": source.id, "lang": template.target, "dataset": source.dataset, "input": input_, "output": output}
    try:
        return Sample.from_record(record)
    except FormatError as exc:
        raise AnswerError(UNPARSEABLE, str(exc)) from None
