"""Prompt templates: the shipped files, rendering, and the checks that catch a broken template on load."""

from __future__ import annotations

from pathlib import Path

import pytest
from translate_fakes import TEMPLATES

from mmm import registry
from mmm.records import Sample
from mmm.translate import template as templates
from mmm.translate.template import TemplateError

MAPPED_DATASETS = {"SCNM", "SCPOS-RW", "SCPOS-AdjN", "SCPOS-Adj", "SCPOS-N", "TCREE"}


@pytest.mark.parametrize(
    "direction, labels, datasets",
    [("ja-en", "mapped", MAPPED_DATASETS), ("ja-zh", "mapped", MAPPED_DATASETS),
     ("en-ja", "translate", {"TCONER"}), ("en-zh", "translate", {"TCONER"})],
)
def test_the_shipped_templates_load_and_cover_their_sub_datasets(direction, labels, datasets):
    template = templates.load(TEMPLATES / f"{direction}.txt")
    assert (template.direction, template.labels, template.datasets()) == (direction, labels, datasets)
    assert template.stop and all(s.startswith("\n") for s in template.stop)
    instructions = {(e.source.dataset, e.source.instruct) for e in template.examples}
    for name in datasets:  # every task word of every sub-dataset has its own example
        assert {(name, word) for word in registry.kind(name).instructions} <= instructions


def sample(dataset: str, input_: str, output: str, lang: str = "ja") -> Sample:
    return Sample.from_record({"id": "x", "lang": lang, "dataset": dataset, "input": input_, "output": output})


def test_render_puts_the_matching_example_and_the_row_last():
    template = templates.load(TEMPLATES / "ja-en.txt")
    row = sample("TCREE", "{text} 株式会社ABCは{x}を買収した。/Event Extraction", "Economy/Event Extraction/:ABC;acquisition;{x}")
    prompt = template.render(row)
    assert prompt.endswith(f"Japanese input:\n{row.input}\nJapanese output:\n{row.output}\nEnglish input:\n")
    assert "{text} 株式会社ABC" in prompt  # braces in the data stay literal
    example = template.example_for(row)
    assert example.source.instruct == "Event Extraction" and example.answer.input in prompt
    relation = sample("TCREE", "AはBに所在する。/Relation Extraction", "Economy/Relation Extraction/:A;located in;B")
    assert template.example_for(relation).source.instruct == "Relation Extraction"


GOOD = """---
source: ja
target: en
labels: mapped
answer_input: "English input:"
answer_output: "English output:"
stop: ["\\n\\n"]
examples:
  - dataset: SCNM
    input: 札幌で雪まつりが開かれた。/NER
    output: Society/NER/:Location;札幌:Event;雪まつり
    answer_input: The snow festival was held in Sapporo./NER
    answer_output: Society/NER/:Location;Sapporo:Event;snow festival
---
Rules.

Japanese input:
{example_input}
Japanese output:
{example_output}
English input:
{example_answer_input}
English output:
{example_answer_output}

Japanese input:
{input}
Japanese output:
{output}
English input:
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ja-en.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_well_formed_template_loads(tmp_path):
    template = templates.load(write(tmp_path, GOOD))
    assert template.examples[0].answer.entities() == ["Sapporo", "snow festival"]
    assert template.body.endswith("English input:\n") and len(template.sha256) == 16


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("labels: mapped\n", "", "front matter lacks 'labels'"),
        ("labels: mapped", "labels: rules", "labels must be one of"),
        ("target: en", "target: ja", "two different languages"),
        ("{example_output}\n", "", "lacks placeholder(s) {example_output}"),
        ("Japanese output:\n{output}\nEnglish input:\n", "Japanese output:\n{output}\nEnglish input:\nThe", "must end with the line"),
        ("answer_output: \"English output:\"", "answer_output: \"English result:\"", "no line 'English result:'"),
        (":Event;snow festival", ":Festival;snow festival", "labels differ between the example's source and answer"),
        ("Event;", "Festival;", "not en labels of SCNM in the registry"),
        ("Event;snow festival", "Event;ice festival", "do not occur in the answer text"),
        (":Event;雪まつり\n", "\n", "different number of pairs"),
        ("output: Society/NER/:Location;札幌", "output: Society/NE/:Location;札幌", "examples[0]: output lacks the instruction"),
        ("dataset: SCNM", "dataset: SCNX", "examples[0]"),
        ('stop: ["\\n\\n"]', 'stop: ["\\n\\n", "\\nEnglish output:"]', "occur inside the answer of the SCNM example"),
    ],
)
def test_template_mistakes_are_named_on_load(tmp_path, old, new, message):
    assert old in GOOD
    with pytest.raises(TemplateError) as error:
        templates.load(write(tmp_path, GOOD.replace(old, new)))
    assert message in str(error.value) and "ja-en.txt" in str(error.value)


def test_missing_file_and_missing_front_matter(tmp_path):
    with pytest.raises(TemplateError, match="no such template"):
        templates.load(tmp_path / "xx-yy.txt")
    with pytest.raises(TemplateError, match="must start with a '---' line"):
        templates.load(write(tmp_path, GOOD.split("---\n", 2)[2]))
    with pytest.raises(TemplateError, match="not closed"):
        templates.load(write(tmp_path, GOOD.replace("\n---\n", "\n", 1)))
