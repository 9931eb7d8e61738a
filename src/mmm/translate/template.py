"""Prompt templates: one file per direction (``prompts/translate/ja-en.txt``, ...), checked on load.

A template file is YAML front matter between two ``---`` lines, then the prompt body::

    ---
    source: ja
    target: en
    labels: mapped            # mapped (labels pre-translated by rules) | translate (TCONER: the model translates them)
    answer_input: "English input:"
    answer_output: "English output:"
    stop: ["\\n\\n", "\\nJapanese input:"]
    examples: [{dataset, input, output, answer_input, answer_output}, ...]
    ---
    ...rules...
    Japanese input:
    {example_input}
    ...
    English input:

The body's placeholders are ``{input}``/``{output}`` (the record to translate, labels already
mapped when ``labels: mapped``) and ``{example_input}``, ``{example_output}``,
``{example_answer_input}``, ``{example_answer_output}`` (the one-shot example whose sub-dataset
and task word match the record). The body ends with the ``answer_input`` line: the model
continues with the translated input line, the ``answer_output`` line and the translated output
line. Everything a prompt author can get wrong is checked when the file is loaded, including
that every example is itself a valid translation under the template's own rules.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mmm import registry
from mmm.errors import MMMError
from mmm.records import FormatError, Sample

LABEL_MODES = ("mapped", "translate")
PLACEHOLDERS = ("{input}", "{output}", "{example_input}", "{example_output}", "{example_answer_input}",
                "{example_answer_output}")
PLACEHOLDER_RE = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))


class TemplateError(MMMError, ValueError):
    """A template file that cannot work; the message names the file and every problem."""


@dataclass(frozen=True)
class Example:
    """A one-shot example: a source record (labels as the model will see them) and its translation."""

    source: Sample
    answer: Sample


@dataclass(frozen=True)
class PromptTemplate:
    path: str
    source: str
    target: str
    labels: str
    answer_input: str
    answer_output: str
    stop: tuple[str, ...]
    body: str
    examples: tuple[Example, ...]

    @property
    def direction(self) -> str:
        return f"{self.source}-{self.target}"

    @property
    def sha256(self) -> str:
        """Identifies the prompt wording in metrics (the cache key already covers every prompt)."""
        return hashlib.sha256(Path(self.path).read_bytes()).hexdigest()[:16]

    def example_for(self, sample: Sample) -> Example | None:
        """The example of the same sub-dataset and task word, else of the same sub-dataset."""
        same = [e for e in self.examples if e.source.dataset == sample.dataset]
        exact = [e for e in same if e.source.instruct == sample.instruct]
        return (exact or same or [None])[0]

    def datasets(self) -> set[str]:
        return {e.source.dataset for e in self.examples}

    def render(self, sample: Sample) -> str:
        """The full prompt for ``sample`` (whose labels are already what the template expects)."""
        example = self.example_for(sample)
        if example is None:
            raise TemplateError(f"{self.path}: no example for sub-dataset {sample.dataset}")
        values = {
            "{example_input}": example.source.input,
            "{example_output}": example.source.output,
            "{example_answer_input}": example.answer.input,
            "{example_answer_output}": example.answer.output,
            "{input}": sample.input,
            "{output}": sample.output,
        }
        return _fill(self.body, values)


def _fill(body: str, values: dict[str, str]) -> str:
    """Replace placeholders in one pass, so braces inside the values stay literal."""
    return PLACEHOLDER_RE.sub(lambda match: values[match.group(0)], body)


def template_path(templates_dir: str | Path, source: str, target: str) -> Path:
    return Path(templates_dir) / f"{source}-{target}.txt"


def load(path: str | Path) -> PromptTemplate:
    """Read and check a template file; raises ``TemplateError`` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(f"{path}: no such template (one file per direction, e.g. ja-en.txt)") from None
    meta, body = _split_front_matter(path, text)
    problems: list[str] = []
    for key in ("source", "target", "labels", "answer_input", "answer_output", "examples"):
        if key not in meta:
            problems.append(f"front matter lacks {key!r}")
    if problems:
        raise TemplateError(f"{path}: " + "; ".join(problems))
    source, target, labels = str(meta["source"]), str(meta["target"]), str(meta["labels"])
    if source not in registry.LANGS or target not in registry.LANGS or source == target:
        problems.append(f"source/target must be two different languages of {registry.LANGS}, got {source}/{target}")
    if labels not in LABEL_MODES:
        problems.append(f"labels must be one of {LABEL_MODES}, got {labels!r}")
    answer_input, answer_output = str(meta["answer_input"]), str(meta["answer_output"])
    stop = tuple(meta.get("stop") or ())
    if any(not isinstance(s, str) or not s for s in stop):
        problems.append("stop must be a list of non-empty strings")
    body = body.rstrip("\n") + "\n"
    lines = body.split("\n")
    missing = [p for p in PLACEHOLDERS if p not in body]
    if missing:
        problems.append(f"body lacks placeholder(s) {', '.join(missing)}")
    if lines[-2:] != [answer_input, ""]:
        problems.append(f"body must end with the line {answer_input!r} (the model continues after it)")
    if answer_output not in lines:
        problems.append(f"body has no line {answer_output!r} (the example must show it)")
    examples = []
    for index, raw in enumerate(meta.get("examples") or []):
        try:
            examples.append(_example(raw, source, target, labels))
        except (FormatError, KeyError, TypeError, ValueError) as exc:
            problems.append(f"examples[{index}]: {exc}")
    if not examples and not problems:
        problems.append("no examples")
    for example in examples:  # a stop string inside a good answer would cut every answer short
        answer = f"{example.answer.input}\n{answer_output}\n{example.answer.output}"
        cutting = [s for s in stop if s in answer]
        if cutting:
            problems.append(f"stop string(s) {cutting} occur inside the answer of the {example.source.dataset} example")
    if problems:
        raise TemplateError(f"{path}: " + "; ".join(problems))
    return PromptTemplate(str(path), source, target, labels, answer_input, answer_output, stop, body, tuple(examples))


def _split_front_matter(path: Path, text: str) -> tuple[dict[str, Any], str]:
    if not text.startswith("---\n"):
        raise TemplateError(f"{path}: must start with a '---' line (YAML front matter, then '---', then the prompt)")
    head, sep, body = text[4:].partition("\n---\n")
    if not sep:
        raise TemplateError(f"{path}: the front matter is not closed by a '---' line")
    try:
        meta = yaml.safe_load(head) or {}
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: front matter is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise TemplateError(f"{path}: front matter must be a mapping")
    return meta, body


def _example(raw: dict[str, Any], source: str, target: str, labels: str) -> Example:
    """Parse one example and check it obeys the rules the model is asked to follow."""
    dataset = raw["dataset"]
    src = Sample.from_record({"id": "example", "lang": source, "dataset": dataset, "input": raw["input"],
                              "output": raw["output"]})
    ans = Sample.from_record({"id": "example", "lang": target, "dataset": dataset, "input": raw["answer_input"],
                              "output": raw["answer_output"]})
    if ans.instruct != src.instruct:
        raise ValueError(f"answer task {ans.instruct!r} differs from {src.instruct!r}")
    if len(ans.pairs) != len(src.pairs):
        raise ValueError("answer has a different number of pairs")
    if labels == "mapped":
        kind = registry.kind(dataset)
        if (ans.text_label, ans.word_labels()) != (src.text_label, src.word_labels()):
            raise ValueError("labels differ between the example's source and answer (labels: mapped)")
        allowed = set(kind.text_inventory(target) or ()) | set(kind.word_inventory(target) or ())
        strays = [x for x in [src.text_label, *src.word_labels()] if allowed and x not in allowed]
        if strays:
            raise ValueError(f"label(s) {strays} are not {target} labels of {dataset} in the registry")
    absent = [e for e in ans.entities() if e not in ans.text]
    if absent:
        raise ValueError(f"answer entities {absent} do not occur in the answer text")
    return Example(src, ans)
