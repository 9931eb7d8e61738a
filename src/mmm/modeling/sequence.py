"""How an MMM record becomes a training sequence, and how a generation becomes fields again.

The paper feeds the model ``input`` and trains it to continue with ``output``, with no dialogue
template. We put one newline between them: the MMM format never uses a newline, so the model
learns to start the answer right after it, and generation can stop at the next newline even
when a small model forgets to emit EOS.

Prompt and answer are tokenized *separately* and concatenated, and prediction tokenizes the
prompt the same way, so the tokens at the boundary are identical in training and inference
(tokenizing the joined string would let the tokenizer merge across the boundary).

``target`` selects what the model learns to output (the Mutual Reinforcement Effect ablation):

* ``joint``     the paper's output ``label/INSTRUCT/:type;entity...``
* ``text_only`` ``label/INSTRUCT/`` (the text-level label only)
* ``word_only`` ``/INSTRUCT/:type;entity...`` (the word-level pairs only)

All three are cut from strings built by :mod:`mmm.records`, so this module never spells the
delimiters itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

from mmm import registry
from mmm.errors import MMMError
from mmm.records import (
    FormatError,
    Sample,
    format_output,
    parse_output,
    parse_word_part,
)

Target = Literal["joint", "text_only", "word_only"]
TARGETS: tuple[str, ...] = get_args(Target)
SEPARATOR = "\n"
IGNORE_INDEX = -100  # label id the loss skips (prompt and padding positions)


class Tokenizer(Protocol):
    eos_token_id: int | None

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict: ...



class SequenceError(MMMError, ValueError):
    """A task word, target or tokenizer the training format cannot use."""

def check_target(target: str) -> str:
    if target not in TARGETS:
        raise SequenceError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    return target


def prompt_text(input_: str) -> str:
    """What the model sees before it answers: the record's ``input`` and the separator."""
    return input_ + SEPARATOR


def target_text(sample: Sample, target: str = "joint") -> str:
    """The answer the model is trained to produce for ``sample`` under ``target``."""
    check_target(target)
    full = format_output(sample.text_label, sample.instruct, sample.pairs)
    if target == "joint":
        return full
    label_part = format_output(sample.text_label, sample.instruct, ())  # "label/INSTRUCT/"
    if target == "text_only":
        return label_part
    return full[len(sample.text_label):]  # "/INSTRUCT/" + pairs


@dataclass(frozen=True)
class Parsed:
    """A generation parsed under its target; ``None`` for the part the target does not predict."""

    text_label: str | None
    pairs: tuple[tuple[str, ...], ...] | None


def dataset_for_task(instruct: str) -> str:
    """The dataset kind to parse pairs with for an instruction word (all kinds sharing a word share its shape)."""
    for kind in registry.kinds():
        if instruct in kind.instructions:
            return kind.name
    known = ", ".join(repr(w) for w in registry.all_instructions())
    raise SequenceError(f"unknown task {instruct!r}; known instruction words: {known}")


def render_answer(target: str, text_label: str | None, task: str, pieces: Sequence[tuple[str, ...]]) -> str:
    """An answer in ``target`` format (joint: ``LABEL/TASK/:…``, word_only: ``/TASK/:…``), e.g. after relabelling."""
    if target == "word_only":
        return format_output("x", task, list(pieces))[1:]
    return format_output(text_label or "", task, list(pieces))


def with_labels(target: str, text_label: str | None, task: str, pieces: Sequence[tuple[str, ...]], label_field: int,
                labels: Sequence[str | None]) -> tuple[str, int]:
    """The answer with piece ``i``'s word label replaced by ``labels[i]`` (None: kept), a piece that becomes a repeat
    kept once, and how many labels changed; the relabelling step shared by every way of re-picking labels."""
    kept: list[tuple[str, ...]] = []
    changed = 0
    for piece, label in zip(pieces, labels, strict=True):
        fields = list(piece)
        if label is not None:
            changed += fields[label_field] != label
            fields[label_field] = label
        if tuple(fields) not in kept:
            kept.append(tuple(fields))
    return render_answer(target, text_label, task, kept), changed


def parse_prediction(prediction: str, dataset: str, instruct: str, target: str = "joint") -> Parsed:
    """Parse a generation strictly under ``target``; raises ``FormatError`` saying what is wrong."""
    check_target(target)
    if target == "joint":
        label, pairs = parse_output(prediction, dataset, instruct)
        return Parsed(label, pairs)
    marker = format_output("x", instruct, ())[1:]  # "/INSTRUCT/"
    if target == "text_only":
        if not prediction.endswith(marker):
            raise FormatError(f"text-only output must end with {marker!r}")
        label, pairs = parse_output(prediction, dataset, instruct)
        if pairs:
            raise FormatError("text-only output has word-level pairs")
        return Parsed(label, None)
    if not prediction.startswith(marker):
        raise FormatError(f"word-only output must start with {marker!r}")
    return Parsed(None, parse_word_part(prediction[len(marker):], dataset))


def encode_prompt(tokenizer: Tokenizer, input_: str) -> list[int]:
    """Prompt token ids, with the tokenizer's own special tokens (BOS for Llama and Gemma)."""
    return list(tokenizer(prompt_text(input_), add_special_tokens=True)["input_ids"])


def encode_answer(tokenizer: Tokenizer, answer: str) -> list[int]:
    """Answer token ids followed by EOS, so the model learns where to stop."""
    if tokenizer.eos_token_id is None:
        raise SequenceError("the tokenizer has no EOS token; set eos_token in its tokenizer_config.json")
    return list(tokenizer(answer, add_special_tokens=False)["input_ids"]) + [tokenizer.eos_token_id]


@dataclass(frozen=True)
class Example:
    """One tokenized training example; ``labels`` masks the prompt with ``IGNORE_INDEX``."""

    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def answer_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


def encode_example(tokenizer: Tokenizer, sample: Sample, target: str = "joint") -> Example:
    """Prompt + answer + EOS, with the loss on the answer (and EOS) only."""
    prompt = encode_prompt(tokenizer, sample.input)
    answer = encode_answer(tokenizer, target_text(sample, target))
    return Example(prompt + answer, [IGNORE_INDEX] * len(prompt) + answer)
