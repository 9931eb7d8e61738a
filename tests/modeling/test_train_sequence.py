"""The sequence format shared by training and prediction (src/mmm/modeling/sequence.py, batching.py)."""

from __future__ import annotations

import pytest
from tiny_model import one_torch_thread, sample_records, tiny_model_dir  # noqa: F401

from mmm.modeling.batching import bucketed_order, collate
from mmm.modeling.loading import load_tokenizer
from mmm.modeling.sequence import (
    IGNORE_INDEX,
    Parsed,
    dataset_for_task,
    encode_example,
    encode_prompt,
    parse_prediction,
    target_text,
)
from mmm.records import FormatError, Sample

NER = Sample.from_record({"id": "1", "lang": "en", "dataset": "SCNM", "input": "Brando in Tokyo/Osaka./NER",
                          "output": "Literature/NER/:Person;Brando:Location;Tokyo/Osaka"})
TRIPLE = Sample.from_record({"id": "2", "lang": "en", "dataset": "TCREE", "input": "Sun acquired Moon./Event Extraction",
                             "output": "Economy/Event Extraction/:Sun;acquisition;Moon"})


@pytest.mark.parametrize(
    "target, expected",
    [
        ("joint", "Literature/NER/:Person;Brando:Location;Tokyo/Osaka"),
        ("text_only", "Literature/NER/"),
        ("word_only", "/NER/:Person;Brando:Location;Tokyo/Osaka"),
    ],
)
def test_targets_cut_the_paper_output(target, expected):
    assert target_text(NER, target) == expected
    parsed = parse_prediction(expected, "SCNM", "NER", target)
    assert parsed.text_label == (None if target == "word_only" else "Literature")
    assert parsed.pairs == (None if target == "text_only" else NER.pairs)


@pytest.mark.parametrize(
    "target, text, expected",
    [
        ("joint", "Economy/Event Extraction/:Sun;acquisition;Moon", Parsed("Economy", (("Sun", "acquisition", "Moon"),))),
        ("text_only", "Economy/Event Extraction/", Parsed("Economy", None)),
        ("word_only", "/Event Extraction/:Sun;acquisition;Moon", Parsed(None, (("Sun", "acquisition", "Moon"),))),
    ],
)
def test_triples_parse_under_every_target(target, text, expected):
    assert target_text(TRIPLE, target) == text
    assert parse_prediction(text, "TCREE", "Event Extraction", target) == expected


@pytest.mark.parametrize(
    "prediction, target",
    [
        ("Literature/NER/:Person", "joint"),        # pair without ';'
        ("Literature/NER/:Person;Brando", "text_only"),  # text-only model emitting pairs
        ("Literature/NER/:Person;Brando", "word_only"),  # word-only output must start with the marker
        ("Literature", "joint"),
    ],
)
def test_malformed_predictions_raise(prediction, target):
    with pytest.raises(FormatError):
        parse_prediction(prediction, "SCNM", "NER", target)


def test_unknown_target_and_task_are_named():
    with pytest.raises(ValueError, match="target must be one of"):
        target_text(NER, "both")
    with pytest.raises(ValueError, match="unknown task 'POS'"):
        dataset_for_task("POS")
    assert dataset_for_task("Relation Extraction") == "TCREE"


def test_loss_covers_the_answer_and_eos_only(tiny_model_dir):  # noqa: F811
    tokenizer = load_tokenizer(tiny_model_dir)
    sample = Sample.from_record(sample_records()[0])
    example = encode_example(tokenizer, sample)
    prompt = encode_prompt(tokenizer, sample.input)  # exactly what prediction feeds the model
    assert example.input_ids[: len(prompt)] == prompt
    assert example.labels[: len(prompt)] == [IGNORE_INDEX] * len(prompt)
    answer = example.labels[len(prompt):]
    assert answer == example.input_ids[len(prompt):] and answer[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(answer, skip_special_tokens=True) == sample.output
    assert tokenizer.decode(prompt, skip_special_tokens=True) == sample.input + "\n"


def test_collate_pads_right_and_masks_padding(tiny_model_dir):  # noqa: F811
    tokenizer = load_tokenizer(tiny_model_dir)
    examples = [encode_example(tokenizer, Sample.from_record(r)) for r in sample_records()[:3]]
    batch = collate(examples, tokenizer.pad_token_id)
    for row, example in enumerate(examples):
        n = len(example)
        assert batch["attention_mask"][row].sum() == n
        assert (batch["labels"][row, n:] == IGNORE_INDEX).all()
        assert batch["input_ids"][row, :n].tolist() == example.input_ids


def test_bucketed_order_is_a_seeded_permutation_per_epoch_with_similar_lengths():
    lengths = [(i * 37) % 101 + 1 for i in range(200)]
    order = bucketed_order(lengths, batch_size=4, epochs=2, seed=1, pool=8)
    assert sorted(order[:200]) == list(range(200)) and sorted(order[200:]) == list(range(200))
    assert order == bucketed_order(lengths, batch_size=4, epochs=2, seed=1, pool=8)
    assert order != bucketed_order(lengths, batch_size=4, epochs=2, seed=2, pool=8)
    spread = lambda o: sum(max(lengths[i] for i in o[k:k + 4]) - min(lengths[i] for i in o[k:k + 4])  # noqa: E731
                           for k in range(0, 200, 4))
    plain = bucketed_order(lengths, batch_size=4, epochs=1, seed=1, bucket=False)
    assert spread(order[:200]) < spread(plain) / 3
