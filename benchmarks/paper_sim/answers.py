"""The simulated API model: well-formed answers to the pipeline's own prompts, spoiled where the fates say.

It reads each prompt as a real model would have to: the last lines of a translation prompt are
the row to translate (``... input:`` / the input line / ``... output:`` / the output line / the
answer's ``... input:`` marker); a labelling prompt ends with ``Text: ...`` and ``Topic:``.
Japanese rows are answered with the embedded sample's reference translation of their base row;
TCONER rows (English) with a made-up Japanese or Chinese rendering that keeps every entity
verbatim and marks every label as translated. The row id in brackets survives translation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from mmm.records import Sample, format_input, format_output, instruction_of
from paper_sim.sources import (
    MISSING_ENTITY,
    OVERLONG,
    RESIDUAL,
    SHORT,
    UNTRANSLATED,
    load_sample_rows,
    marked,
)

MARKER_RE = re.compile(r" \[([a-z]+)-(\d+)\]$")
TARGET_OF_MARKER = {"English input:": "en", "Chinese input:": "zh", "Japanese input:": "ja"}
DATASET_OF_SHORT = {short: dataset for dataset, short in SHORT.items()}
TOPICS = ("science", "food", "law", "sports", "music", "technology", "history", "business")
TCONER_STYLE = {  # (text pattern, text-label suffix, word-label suffix, entity joiner) of the made-up renderings
    "ja": ("{entities}についての記事", "分野", "類", "、"),
    "zh": ("关于{entities}的文章", "领域", "类", "、"),
}
RESIDUE = "です"  # kana: residual Japanese in an English or Chinese text


class SimAnswerer:
    """``answer(prompt) -> str`` for the fake OpenAI server (``tests/fake_openai.py``)."""

    def __init__(self, sample_dir: Path, fates: Mapping[str, Mapping[str, str]]):
        self.fates = fates
        self.references: dict[tuple[str, str], dict[str, Sample]] = {}
        by_id = {s.id: s for rows in load_sample_rows(sample_dir).values() for s in rows}
        for lang in ("en", "zh"):
            for path in sorted((sample_dir / "reference" / lang).glob("*.jsonl")):
                for line in path.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        ref = Sample.from_record(json.loads(line))
                        base = by_id[ref.id]
                        self.references.setdefault((base.dataset, base.text), {})[lang] = ref

    def __call__(self, prompt: str) -> str:
        lines = prompt.rstrip("\n").split("\n")
        if lines[-1].strip() == "Topic:":
            return self.topic(lines[-2].removeprefix("Text: "))
        target = TARGET_OF_MARKER.get(lines[-1].strip())
        if target is None or len(lines) < 4:
            return "I cannot tell what this prompt asks."
        answer_output = lines[-1].strip().replace(" input:", " output:")
        source_input, source_output = lines[-4], lines[-2]
        instruct = instruction_of(source_input) or ""
        text = source_input[: len(source_input) - len(instruct) - 1]
        match = MARKER_RE.search(text)
        if match is None:
            return "I cannot find the row."
        row_id, base_text = f"{match.group(1)}-{match.group(2)}", text[: match.start()]
        dataset = DATASET_OF_SHORT[match.group(1)]
        if dataset == "TCONER":
            source = Sample.from_record({"id": row_id, "lang": "en", "dataset": dataset, "input": source_input,
                                         "output": source_output})
            new_input, new_output = self.tconer(source, row_id, target)
        else:
            ref = self.references[(dataset, base_text)][target]
            fate = self.fates.get(target, {}).get(row_id)
            body = ref.text + (RESIDUE if fate == RESIDUAL else "")
            new_input = source_input if fate == UNTRANSLATED else format_input(marked(body, row_id), ref.instruct)
            new_output = ref.output
        return f"{new_input}\n{answer_output}\n{new_output}"

    def tconer(self, source: Sample, row_id: str, target: str) -> tuple[str, str]:
        pattern, text_suffix, word_suffix, joiner = TCONER_STYLE[target]
        fate = self.fates.get(f"tconer_{target}", {}).get(row_id)
        entities = joiner.join(dict.fromkeys(source.entities()))
        body = pattern.format(entities="" if fate == MISSING_ENTITY else entities)
        body += RESIDUE if fate == RESIDUAL else ""
        pairs = [(label + word_suffix, *rest) for label, *rest in source.pairs]
        new_input = source.input if fate == UNTRANSLATED else format_input(marked(body, row_id), source.instruct)
        return new_input, format_output(source.text_label + text_suffix, source.instruct, pairs)

    def topic(self, text: str) -> str:
        match = MARKER_RE.search(text)
        row_id = f"{match.group(1)}-{match.group(2)}" if match else ""
        if self.fates.get("label", {}).get(row_id) == OVERLONG:
            return "a topic of far too many words to be a label"
        number = int(match.group(2)) if match else 0
        return " " + TOPICS[number % len(TOPICS)]
