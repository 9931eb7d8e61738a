"""Word labels chosen by the whole piece: each label of a generated answer re-picked by the model's joint
probability of the label *and* the entity it names.

The MMM format writes a pair's label before its entity (``:地名;東京``), so greedy decoding commits to a
label before it has written the entity; a small model then tends to give every entity the label it
prefers most (one type for everything). Rescoring fixes the order: for each piece of an answer, every
label of the row's closed set is put in place of the generated one and the model scores the piece as it
would have written it, ``log P(label ; entity, boundary | prompt, answer before the piece)``, where the
boundary is the ``:`` of the next piece or the end of the answer. The best label wins; entities, the text
label and the order of pieces are kept. A piece is scored given the answer *as generated* before it, so
all candidates of all pieces are independent: the prompt and answer before a piece go through the model
once, and the candidate continuations are scored from a copy of that KV cache. A relabelled answer that
repeats a piece keeps the first.

Tokens are those of training (:mod:`mmm.modeling.sequence`): the prompt with special tokens, then the
answer tokenized as one string, then EOS. A candidate's scored tokens are those after the longest common
prefix of ``tokenize(prefix)`` and ``tokenize(prefix + piece)``, so a merge across the boundary is scored
too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mmm import registry
from mmm.modeling.sequence import encode_prompt, parse_prediction, render_answer, with_labels
from mmm.records import FormatError

DEFAULT_BATCH = 16  # continuations per forward pass after a shared prefix


@dataclass(frozen=True)
class Answer:
    """One generated answer and the labels its pieces may take (``labels`` None: left as generated)."""

    input: str  # the record input, ``TEXT/TASK``
    prediction: str  # the answer in the model's target format
    dataset: str
    task: str
    target: str  # joint | text_only | word_only
    labels: tuple[str, ...] | None


@dataclass(frozen=True)
class _Candidate:
    answer: int
    piece: int
    label: str
    ids: list[int]
    scored_from: int  # index in ``ids`` of the first scored token


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def candidates(tokenizer: Any, answers: Sequence[Answer]) -> tuple[list[_Candidate], dict[int, tuple]]:
    """Every (answer, piece, label) sequence to score, and each rescored answer's parsed (label, pieces)."""
    found: list[_Candidate] = []
    parsed_answers: dict[int, tuple] = {}
    for a, answer in enumerate(answers):
        if not answer.labels or answer.target == "text_only":
            continue
        try:
            parsed = parse_prediction(answer.prediction, answer.dataset, answer.task, answer.target)
        except FormatError:
            continue
        pieces = list(parsed.pairs or ())
        if not pieces:
            continue
        parsed_answers[a] = (parsed.text_label, pieces)
        label_field = registry.kind(answer.dataset).label_field
        prompt = encode_prompt(tokenizer, answer.input)
        for p, piece in enumerate(pieces):
            prefix = render_answer(answer.target, parsed.text_label, answer.task, pieces[:p]) + ":"
            base = tokenizer(prefix, add_special_tokens=False)["input_ids"]
            last = p == len(pieces) - 1
            for label in answer.labels:
                fields = list(piece)
                fields[label_field] = label
                ids = tokenizer(prefix + ";".join(fields) + ("" if last else ":"), add_special_tokens=False)["input_ids"]
                start = _common_prefix(base, ids)
                ids = prompt + ids + ([tokenizer.eos_token_id] if last else [])
                found.append(_Candidate(a, p, label, ids, len(prompt) + start))
    return found, parsed_answers


def score(model: Any, sequences: Sequence[_Candidate], batch_size: int = DEFAULT_BATCH) -> list[float]:
    """Sum of log-probabilities of each candidate's scored tokens, in order.

    Candidates that share everything before their scored tokens (the labels of one piece, as a rule) share one
    forward pass over it: its KV cache is copied for each batch of their continuations, right-padded."""
    import copy

    import torch

    scores = [0.0] * len(sequences)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, c in enumerate(sequences):
        groups.setdefault(tuple(c.ids[:c.scored_from]), []).append(i)
    for prefix, members in groups.items():
        with torch.inference_mode():
            shared = model(input_ids=torch.tensor([prefix]), use_cache=True, logits_to_keep=1)
        first = shared.logits[0, -1].float().log_softmax(-1)
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            tails = [sequences[i].ids[sequences[i].scored_from:] for i in chunk]
            width = max(len(t) for t in tails)
            cache = copy.deepcopy(shared.cache)
            cache.batch_repeat_interleave(len(chunk))
            ids = torch.tensor([t + [t[-1]] * (width - len(t)) for t in tails])  # padding is never scored
            mask = torch.tensor([[1] * (len(prefix) + len(t)) + [0] * (width - len(t)) for t in tails])
            positions = torch.arange(len(prefix), len(prefix) + width).expand(len(chunk), -1)
            with torch.inference_mode():
                logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                               use_cache=True).logits.float()
            logprobs = logits.log_softmax(-1)
            for row, (index, tail) in enumerate(zip(chunk, tails)):
                # the first scored token is predicted by the prefix's last position, token j of the tail by j - 1
                scores[index] = float(first[tail[0]]) + sum(float(logprobs[row, j - 1, tail[j]]) for j in range(1, len(tail)))
    return scores


def relabel(model: Any, tokenizer: Any, answers: Sequence[Answer], batch_size: int = DEFAULT_BATCH) -> tuple[list[str], int]:
    """Each answer with its word labels re-chosen (in order), and how many pieces changed label.

    Answers without ``labels``, unparseable ones and text-only ones come back unchanged."""
    found, parsed = candidates(tokenizer, answers)
    scores = score(model, found, batch_size)
    best: dict[tuple[int, int], tuple[float, str]] = {}
    for c, value in zip(found, scores):
        key = (c.answer, c.piece)
        if key not in best or value > best[key][0]:  # ties keep the earlier label of the set
            best[key] = (value, c.label)
    out = [a.prediction for a in answers]
    changed = 0
    for a, (text_label, pieces) in parsed.items():
        field = registry.kind(answers[a].dataset).label_field
        out[a], n = with_labels(answers[a].target, text_label, answers[a].task, pieces, field,
                                [best[(a, p)][1] for p in range(len(pieces))])
        changed += n
    return out, changed
