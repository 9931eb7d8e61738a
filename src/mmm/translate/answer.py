"""Reading a one-shot answer back into a record: the translated input line, the output marker, the output line.

The prompt ends with the ``answer_input`` marker line, so a good answer looks like::

    Shiomiso ... welcomed a new head chef./NER
    English output:
    Society/NER/:Facility;Shiomiso:Person;Chiyo Murakami

Parsing is strict (``mmm.records``): an answer that does not give exactly one input line, the
marker and an output line that parse as an MMM record of the row's sub-dataset (after the
one repair ``parse_answer`` names) is ``unparseable``; one cut off by the token cap before its output line ended is ``truncated``
(raise ``translate.max_tokens`` rather than fix the prompt).
"""

from __future__ import annotations

from mmm.records import FormatError, Sample, format_input, instruction_of
from mmm.translate.template import PromptTemplate

UNPARSEABLE = "unparseable"
TRUNCATED = "truncated"
TASK_WORD_ADDED = "task_word_added"


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
    marker = template.answer_output
    if marker not in lines:
        raise AnswerError(TRUNCATED if cut else UNPARSEABLE, f"no {marker!r} line")
    index = lines.index(marker)
    before, after = [line for line in lines[:index] if line], lines[index + 1:]
    if len(before) != 1:
        raise AnswerError(UNPARSEABLE, f"expected one input line before {marker!r}, got {len(before)}")
    position = next((i for i, line in enumerate(after) if line), None)
    if position is None:
        raise AnswerError(TRUNCATED if cut else UNPARSEABLE, f"nothing after {marker!r}")
    if cut and position == len(after) - 1:  # the output line is the last thing generated, and it was cut
        raise AnswerError(TRUNCATED, "the answer reached max_tokens inside the output line")
    return before[0], after[position]


def parse_answer(text: str, template: PromptTemplate, source: Sample, finish_reason: str | None = None
                 ) -> tuple[Sample, list[str]]:
    """The translated record of ``source`` (same id and sub-dataset, target language) and the repairs made.

    One repair, counted in the metrics: an input line without any ``/TASK`` suffix gets the
    source's (``task_word_added``). Small models often drop it; the task word is fixed by the
    source, not something the model translates, so restoring it loses nothing. A *different*
    task word is kept, and fails the ``instruction_changed`` check. Raises ``AnswerError``.
    """
    input_, output = split_answer(text, template, finish_reason)
    repairs = []
    if instruction_of(input_) is None:
        input_ = format_input(input_, source.instruct)
        repairs.append(TASK_WORD_ADDED)
    record = {"id": source.id, "lang": template.target, "dataset": source.dataset, "input": input_, "output": output}
    try:
        return Sample.from_record(record), repairs
    except FormatError as exc:
        raise AnswerError(UNPARSEABLE, str(exc)) from None
