"""Helpers for the translation tests: mapped sample rows and fake translators for the fake OpenAI server.

``ReferenceTranslator`` plays a perfect model: it finds the row being translated at the end of
the prompt and answers with the sample's reference translation in the template's answer layout,
so a correct pipeline keeps every row and scores chrF 100. Its ``tamper`` hook makes specific
answers wrong in a chosen way.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from mmm.translate import label_map
from mmm.translate import template as templates

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "prompts" / "translate"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def sources(sample_dir: Path) -> list[dict]:
    return [r for p in sorted((sample_dir / "ja").glob("*.jsonl")) for r in read_jsonl(p)]


def references(sample_dir: Path, lang: str) -> list[dict]:
    return [r for p in sorted((sample_dir / "reference" / lang).glob("*.jsonl")) for r in read_jsonl(p)]


def mapped_rows(sample_dir: Path, lang: str, per_dataset: int | None = None) -> list[dict]:
    """Sample source rows with labels mapped to ``lang`` (what the label_map stage writes)."""
    from mmm.records import Sample

    samples = [Sample.from_record(r) for r in sources(sample_dir)]
    if per_dataset is not None:
        counts: Counter = Counter()
        kept = []
        for s in samples:
            if counts[s.dataset] < per_dataset:
                kept.append(s)
                counts[s.dataset] += 1
        samples = kept
    mapped = label_map.map_all(samples, [lang])[lang]
    return [{**s.to_record(), "labels_lang": lang} for s in mapped]


def consistent_en_rows(sample_dir: Path) -> list[dict]:
    """Two en rows per sub-dataset whose entities translate the same way wherever they occur (as a fake
    anchored translator answering term by term needs)."""
    from mmm.records import Sample

    ref = {r["id"]: Sample.from_record(r) for r in references(sample_dir, "en")}
    seen: dict[str, str] = {}
    chosen, per = [], Counter()
    for row in mapped_rows(sample_dir, "en", per_dataset=4):
        pairs = list(zip(Sample.from_record(row).entities(), ref[row["id"]].entities()))
        if any(seen.get(s, t) != t for s, t in pairs) or per[row["dataset"]] == 2:
            continue
        seen.update(pairs)
        per[row["dataset"]] += 1
        chosen.append(row)
    return chosen


def task_lines(prompt: str) -> tuple[str, str]:
    """The (input, output) lines of the row a prompt asks to translate (the prompt ends with them)."""
    lines = prompt.split("\n")
    return lines[-5], lines[-3]


class ReferenceTranslator:
    """``answer(prompt)`` for ``FakeOpenAI``: the reference translation of the prompted row."""

    def __init__(self, source_rows: list[dict], reference_rows: list[dict], direction: str,
                 tamper: Callable[[str, str, str], tuple[str, str]] | None = None):
        self.template = templates.load(TEMPLATES / f"{direction}.txt")
        by_id = {r["id"]: r for r in reference_rows}
        self.by_input = {r["input"]: by_id[r["id"]] for r in source_rows}
        self.tamper = tamper

    def __call__(self, prompt: str) -> str:
        source_input, _ = task_lines(prompt)
        ref = self.by_input[source_input]
        input_, output = ref["input"], ref["output"]
        if self.tamper is not None:
            input_, output = self.tamper(ref["id"], input_, output)
        return f"{input_}\n{self.template.answer_output}\n{output}\n\nJapanese input:\nmore rambling"
