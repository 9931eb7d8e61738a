"""Label rescoring (mmm.modeling.relabel) on the tiny random Llama: batched scores equal one sequence at a time,
the chosen label is the argmax of the joint score, and what cannot be rescored is left alone."""

from __future__ import annotations

import math

import pytest
from tiny_model import one_torch_thread, tiny_model_dir  # noqa: F401

from mmm.modeling import relabel as R
from mmm.modeling.generation import Engine
from mmm.modeling.sequence import encode_prompt, render_answer

INPUT = "Ann met Bob in Tokyo./NER"
LABELS = ("Person", "Location", "Company")


@pytest.fixture(scope="module")
def engine(tiny_model_dir):  # noqa: F811
    return Engine.load(tiny_model_dir)


def answer(prediction: str, labels=LABELS, target: str = "joint", input_: str = INPUT) -> R.Answer:
    return R.Answer(input_, prediction, "SCNM", "NER", target, labels)


def one_by_one(engine: Engine, a: R.Answer, text_label: str | None, pieces: list[tuple[str, str]],
               index: int, label: str) -> float:
    """The joint score of one candidate, unpadded and with the whole vocabulary's logits."""
    import torch

    tok = engine.tokenizer
    prefix = render_answer(a.target, text_label, a.task, pieces[:index]) + ":"
    last = index == len(pieces) - 1
    body = f"{label};{pieces[index][1]}" + ("" if last else ":")
    base = tok(prefix, add_special_tokens=False)["input_ids"]
    full = tok(prefix + body, add_special_tokens=False)["input_ids"]
    start = next((n for n, (x, y) in enumerate(zip(base, full)) if x != y), min(len(base), len(full)))
    prompt = encode_prompt(tok, a.input)
    ids = prompt + full + ([tok.eos_token_id] if last else [])
    with torch.inference_mode():
        logprobs = engine.model(input_ids=torch.tensor([ids])).logits.float().log_softmax(-1)[0]
    return sum(float(logprobs[t - 1, ids[t]]) for t in range(len(prompt) + start, len(ids)))


def test_scores_from_a_shared_prefix_cache_equal_one_sequence_at_a_time(engine, one_torch_thread):  # noqa: F811
    answers = [answer("Society/NER/:Person;Ann:Location;Tokyo"),
               answer("Society/NER/:Company;Bob", input_="Bob works at a long named company in Tokyo today./NER")]
    found, parsed = R.candidates(engine.tokenizer, answers)
    assert len(found) == 3 * len(LABELS)
    batched = R.score(engine.model, found, batch_size=2)
    for c, value in zip(found, batched):
        text_label, pieces = parsed[c.answer]
        expected = one_by_one(engine, answers[c.answer], text_label, pieces, c.piece, c.label)
        assert math.isclose(value, expected, rel_tol=1e-4, abs_tol=1e-3), (c, value, expected)


def test_each_piece_takes_the_label_of_the_highest_joint_score(engine, one_torch_thread):  # noqa: F811
    a = answer("Society/NER/:Company;Ann:Company;Tokyo")
    (relabelled,), changed = R.relabel(engine.model, engine.tokenizer, [a])
    pieces = [("Company", "Ann"), ("Company", "Tokyo")]
    best = [max(LABELS, key=lambda lab: one_by_one(engine, a, "Society", pieces, i, lab)) for i in range(2)]
    assert relabelled == f"Society/NER/:{best[0]};Ann:{best[1]};Tokyo"
    assert changed == sum(b != "Company" for b in best)


def test_a_relabelled_repeat_is_kept_once_and_word_only_answers_keep_their_format(engine, one_torch_thread):  # noqa: F811
    (joint, word_only), changed = R.relabel(engine.model, engine.tokenizer, [
        answer("Society/NER/:Person;Ann:Location;Ann", labels=("Person",)),
        answer("/NER/:Location;Ann", labels=("Person",), target="word_only"),
    ])
    assert joint == "Society/NER/:Person;Ann"
    assert word_only == "/NER/:Person;Ann"
    assert changed == 2


def test_what_cannot_be_rescored_comes_back_unchanged(engine, one_torch_thread):  # noqa: F811
    untouched = [
        answer("Society/NER/:Person;Ann", labels=None),  # open label set
        answer("Society/NER:Person;Ann"),  # does not parse
        answer("Society/NER/"),  # no pieces
        answer("Society/NER/", target="text_only"),
    ]
    out, changed = R.relabel(engine.model, engine.tokenizer, untouched)
    assert out == [a.prediction for a in untouched] and changed == 0
