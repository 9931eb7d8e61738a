"""The seven MMM sub-dataset kinds, loaded from ``resources/registry.yaml``.

Everything that differs between sub-datasets (instruction words, label inventories, the
shape of the word-level part, the paper's sizes) is data, so code elsewhere asks the
registry instead of branching on dataset names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Literal

import yaml

LANGS: tuple[str, ...] = ("en", "ja", "zh")
DATASETS: tuple[str, ...] = (
    "SCNM",
    "SCPOS-RW",
    "SCPOS-AdjN",
    "SCPOS-Adj",
    "SCPOS-N",
    "TCREE",
    "TCONER",
)
WordLevel = Literal["pair", "triple"]


@dataclass(frozen=True)
class DatasetKind:
    """One sub-dataset kind (the same for all three languages)."""

    name: str
    instructions: tuple[str, ...]
    word_level: WordLevel
    open_domain: bool = False
    text_labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    word_labels: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def fields_per_piece(self) -> int:
        """Fields in one word-level piece: 2 for ``label;entity``, 3 for ``head;label;tail``."""
        return 3 if self.word_level == "triple" else 2

    @property
    def label_field(self) -> int:
        """Index of the label inside a word-level piece."""
        return 1 if self.word_level == "triple" else 0

    def entity_fields(self) -> tuple[int, ...]:
        """Indexes of the fields of a piece that are spans of the text."""
        return (0, 2) if self.word_level == "triple" else (1,)

    def label_map(self, level: Literal["text", "word"], source: str, target: str) -> dict[str, str]:
        """Rule-based label mapping ``source`` -> ``target`` language (empty for open-domain kinds)."""
        table = self.text_labels if level == "text" else self.word_labels
        if not table:
            return {}
        return dict(zip(table[source], table[target]))

    def text_inventory(self, lang: str) -> tuple[str, ...] | None:
        """Allowed text-level labels in ``lang``, or ``None`` for open-domain kinds."""
        return None if self.open_domain else self.text_labels[lang]

    def word_inventory(self, lang: str) -> tuple[str, ...] | None:
        """Allowed word-level labels in ``lang``, or ``None`` for open-domain kinds."""
        return None if self.open_domain else self.word_labels[lang]


@lru_cache(maxsize=1)
def _raw() -> dict:
    text = resources.files("mmm").joinpath("resources/registry.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@lru_cache(maxsize=None)
def kind(name: str) -> DatasetKind:
    """The kind called ``name``; raises ``KeyError`` naming the known kinds otherwise."""
    spec = _raw()["datasets"].get(name)
    if spec is None:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DatasetKind(
        name=name,
        instructions=tuple(spec["instructions"]),
        word_level=spec["word_level"],
        open_domain=bool(spec.get("open_domain", False)),
        text_labels=_by_language(name, "text_labels", spec.get("text_labels", [])),
        word_labels=_by_language(name, "word_labels", spec.get("word_labels", [])),
    )


def _by_language(dataset: str, table: str, rows: list[dict[str, str]]) -> dict[str, tuple[str, ...]]:
    """Turn a label table (one row per label, one column per language) into per-language inventories."""
    for index, row in enumerate(rows):
        if set(row) != set(LANGS) or not all(isinstance(v, str) and v for v in row.values()):
            raise ValueError(f"registry.yaml: {dataset}.{table}[{index}] needs non-empty ja, en and zh, got {row}")
    return {lang: tuple(row[lang] for row in rows) for lang in LANGS} if rows else {}


def kinds() -> list[DatasetKind]:
    """All seven kinds in the paper's order."""
    return [kind(name) for name in DATASETS]


def all_instructions() -> tuple[str, ...]:
    """Every instruction word, longest first (so suffix matching prefers the most specific)."""
    words = {w for k in kinds() for w in k.instructions}
    return tuple(sorted(words, key=len, reverse=True))


def paper_sizes(table: Literal["translated", "train", "test"]) -> dict[str, dict[str, int]]:
    """The paper's Table 2 (``translated``), 3 (``train``) or 4 (``test``): ``{lang: {dataset: n}}``."""
    return {lang: dict(sizes) for lang, sizes in _raw()["paper_sizes"][table].items()}
