"""The MMM string format: the published example verbatim, strict errors, exact round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmm import registry
from mmm.records import FormatError, Sample, format_output, parse_output, split_input

PUBLISHED_INPUT = (
    'In 1953, filming of "On the Waterfront" starring Marlon Brando began, and Kazan struggled with '
    "Spiegel's persistent budget cuts and managed to complete the film, which was released the following "
    "year in 1954 and became a huge hit with support from the laborer class./NER"
)
PUBLISHED_OUTPUT = "Literature/NER/:Person;Marlon Brando:Product Name;On the Waterfront:Person;Kazan:Person;Spiegel"


def test_published_example_parses_and_formats_back_verbatim():
    record = {"id": "x", "lang": "en", "dataset": "SCNM", "input": PUBLISHED_INPUT, "output": PUBLISHED_OUTPUT}
    sample = Sample.from_record(record)
    assert sample.instruct == "NER"
    assert sample.text.endswith("the laborer class.")
    assert sample.text_label == "Literature"
    assert sample.pairs == (
        ("Person", "Marlon Brando"),
        ("Product Name", "On the Waterfront"),
        ("Person", "Kazan"),
        ("Person", "Spiegel"),
    )
    assert sample.to_record() == record
    assert all(entity in sample.text for entity in sample.entities())


def test_text_with_slashes_colons_and_semicolons():
    record = {
        "id": "t1",
        "lang": "ja",
        "dataset": "SCNM",
        "input": "2023/04/01 10:30; 東京駅で山田が会見した。https://example.org/a/NER/NER",
        "output": "社会/NER/:地名;東京:人名;山田:施設名;10:30の会場",
    }
    sample = Sample.from_record(record)
    assert sample.text == "2023/04/01 10:30; 東京駅で山田が会見した。https://example.org/a/NER"
    assert sample.pairs[-1] == ("施設名", "10:30の会場")
    assert sample.to_record() == record


def test_instruction_words_that_share_a_prefix():
    assert split_input("とても良い。/Sentiment Adj and N", "SCPOS-AdjN") == ("とても良い。", "Sentiment Adj and N")
    assert split_input("とても良い。/Sentiment Adj", "SCPOS-Adj") == ("とても良い。", "Sentiment Adj")
    with pytest.raises(FormatError, match="Sentiment Adj"):
        split_input("とても良い。/Sentiment Adj and N", "SCPOS-Adj")


def test_tcree_triple_and_empty_word_part():
    label, pairs = parse_output("経済/Relation Extraction/:日本自動車;所在地;豊田市", "TCREE", "Relation Extraction")
    assert (label, pairs) == ("経済", (("日本自動車", "所在地", "豊田市"),))
    assert parse_output("Society/NER/", "SCNM", "NER") == ("Society", ())


@pytest.mark.parametrize(
    "output, message",
    [
        ("Society/NR/:Person;A", "marker"),
        ("Society:Person;A", "marker"),
        ("/NER/:Person;A", "empty text label"),
        ("Society/NER/Person;A", "start with ':'"),
        ("Society/NER/:Person", "without ';'"),
        ("Society/NER/:Person;A;B", "more than one ';'"),
        ("Society/NER/:;A", "empty field"),
        ("Society/NER/:Person;", "empty field"),
    ],
)
def test_malformed_outputs_are_rejected_with_a_reason(output, message):
    with pytest.raises(FormatError, match=message):
        parse_output(output, "SCNM", "NER")


def test_tcree_needs_exactly_three_fields():
    with pytest.raises(FormatError, match="2 field"):
        parse_output("経済/Relation Extraction/:A;所在地", "TCREE", "Relation Extraction")


def test_unknown_dataset_and_language_are_named():
    base = {"id": "x", "input": "a/NER", "output": "Society/NER/"}
    with pytest.raises(FormatError, match="unknown dataset 'FOO'"):
        Sample.from_record({**base, "lang": "en", "dataset": "FOO"})
    with pytest.raises(FormatError, match="unknown lang 'fr'"):
        Sample.from_record({**base, "lang": "fr", "dataset": "SCNM"})
    with pytest.raises(FormatError, match="missing"):
        Sample.from_record({"id": "x", "lang": "en", "dataset": "SCNM", "input": "a/NER"})


def test_format_refuses_values_it_could_not_parse_back():
    with pytest.raises(FormatError, match="contains"):
        format_output("So/ciety", "NER", ())
    with pytest.raises(FormatError, match="';'"):
        format_output("Society", "NER", [("Person", "a;b")])


# --- property tests -----------------------------------------------------------------------
# Texts and entities draw from an alphabet rich in the format's own delimiters.
ALPHABET = st.sampled_from(list("ab xyz:/;。、東京タ日本語-_.,") + ["\u3000", "é"])
texts = st.text(ALPHABET, min_size=0, max_size=40)
entities = st.text(st.sampled_from(list("ab xyz:/。東京タ.-")), min_size=1, max_size=12)
open_labels = st.text(st.sampled_from(list("abcXYZ 人名-_")), min_size=1, max_size=10)


@st.composite
def samples(draw) -> Sample:
    kind = draw(st.sampled_from(registry.kinds()))
    lang = draw(st.sampled_from(registry.LANGS))
    instruct = draw(st.sampled_from(kind.instructions))
    if kind.open_domain:
        text_label, word_label = draw(open_labels), open_labels
    else:
        text_label = draw(st.sampled_from(kind.text_labels[lang]))
        word_label = st.sampled_from(kind.word_labels[lang])
    if kind.word_level == "triple":
        pairs = draw(st.lists(st.tuples(entities, word_label, entities), max_size=1))
    else:
        pairs = draw(st.lists(st.tuples(word_label, entities), max_size=6))
    return Sample("id", lang, kind.name, draw(texts), instruct, text_label, tuple(pairs))


@settings(max_examples=400, deadline=None)
@given(samples())
def test_format_parse_format_round_trips(sample: Sample):
    record = sample.to_record()
    parsed = Sample.from_record(record)
    assert parsed == sample
    assert parsed.to_record() == record
