"""Prompts of anchored translation (``prompts/anchored/<source>-<target>.yaml``) and the glossary
(``data/glossary/<source>-<target>.yaml``), both checked on load.

A prompt file holds the language names, an optional instruction line, examples for the two
steps (``term_examples``: ``[source, target]``; ``text_examples``: ``{source, terms, target}``) and
the ``reask`` sentence with a ``{terms}`` placeholder. Prompts are plain completions, one answer
line each::

    <instruction>

    Japanese: 長崎
    English: Nagasaki

    Japanese: <term>
    English:

A text prompt adds a ``Terms: a = A; b = B`` line under the source line. Every example is checked
the way a model answer would be (terms inside the target text, no banned characters), because a
bad demonstration teaches the model the mistake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mmm import filters
from mmm.errors import MMMError

TERM_BANNED = ";\n"  # a word-level entity may not hold the pair separator
LABEL_BANNED = "/:;\n"  # a label may not hold any MMM delimiter
STOP = ("\n",)


class AnchorConfigError(MMMError, ValueError):
    """A prompt or glossary file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class TextExample:
    source: str
    terms: tuple[tuple[str, str], ...]
    target: str


@dataclass(frozen=True)
class AnchorPrompts:
    path: str
    source: str
    target: str
    source_name: str
    target_name: str
    instruction: str
    term_examples: tuple[tuple[str, str], ...]
    text_examples: tuple[TextExample, ...]
    reask: str

    def _header(self) -> str:
        return f"{self.instruction}\n\n" if self.instruction else ""

    def term_prompt(self, term: str) -> str:
        shots = "".join(f"{self.source_name}: {s}\n{self.target_name}: {t}\n\n" for s, t in self.term_examples)
        return f"{self._header()}{shots}{self.source_name}: {term}\n{self.target_name}:"

    def text_prompt(self, text: str, terms: list[tuple[str, str]], missing: list[str] | None = None) -> str:
        """The text step's prompt; ``missing`` (re-ask) names the terms the first answer left out."""
        shots = "".join(self._text_block(e.source, list(e.terms)) + f" {e.target}\n\n" for e in self.text_examples)
        note = self.reask.format(terms="; ".join(missing)) + "\n" if missing else ""
        return f"{self._header()}{shots}{self._text_block(text, terms, note)}"

    def _text_block(self, text: str, terms: list[tuple[str, str]], note: str = "") -> str:
        listed = "; ".join(f"{s} = {t}" for s, t in terms)
        return f"Terms: {listed}\n{self.source_name}: {text}\n{note}{self.target_name}:"


def direction_path(directory: str | Path, source: str, target: str, suffix: str = ".yaml") -> Path:
    return Path(directory) / f"{source}-{target}{suffix}"


def load_prompts(directory: str | Path, source: str, target: str) -> AnchorPrompts:
    path = direction_path(directory, source, target)
    data = _read_yaml(path, "prompt file")
    where = str(path)
    if (data.get("source"), data.get("target")) != (source, target):
        raise AnchorConfigError(f"{where}: says source {data.get('source')!r} -> target {data.get('target')!r}, "
                                f"but its name is for {source} -> {target}")
    for key in ("source_name", "target_name", "reask"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise AnchorConfigError(f"{where}: `{key}` must be a non-empty string")
    if "{terms}" not in data["reask"]:
        raise AnchorConfigError(f"{where}: `reask` must contain the placeholder {{terms}}")
    terms = tuple(_pair(item, f"{where}: term_examples[{i}]") for i, item in enumerate(data.get("term_examples") or []))
    texts = tuple(_text_example(item, f"{where}: text_examples[{i}]") for i, item in enumerate(data.get("text_examples") or []))
    if not terms or not texts:
        raise AnchorConfigError(f"{where}: needs at least one term example and one text example")
    prompts = AnchorPrompts(where, source, target, data["source_name"], data["target_name"],
                            str(data.get("instruction") or "").strip(), terms, texts, data["reask"])
    for i, (_, translation) in enumerate(prompts.term_examples):
        _check_output(translation, target, TERM_BANNED, f"{where}: term_examples[{i}]")
    for i, example in enumerate(prompts.text_examples):
        _check_output(example.target, target, "\n", f"{where}: text_examples[{i}].target")
        for _, translation in example.terms:
            if translation not in example.target:
                raise AnchorConfigError(f"{where}: text_examples[{i}]: term {translation!r} is not in its target text")
    return prompts


def load_glossary(directory: str | Path | None, source: str, target: str) -> dict[str, str]:
    """Pinned translations (source -> target); an absent file is an empty glossary."""
    if directory is None:
        return {}
    path = direction_path(directory, source, target)
    if not path.exists():
        return {}
    data = _read_yaml(path, "glossary")
    glossary: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key.strip() or not value.strip():
            raise AnchorConfigError(f"{path}: entry {key!r}: {value!r}: both sides must be non-empty strings")
        _check_output(value, target, TERM_BANNED, f"{path}: entry {key!r}")
        glossary[key] = value.strip()
    return glossary


def banned_chars(text: str, target: str, extra: str) -> list[str]:
    """Characters of ``text`` the filter (residual Japanese) or the MMM format (``extra``) rejects."""
    return sorted({c for c in text if c in extra or filters.is_residual_char(c, target)})


def _check_output(text: str, target: str, extra: str, where: str) -> None:
    bad = banned_chars(text, target, extra)
    if bad:
        raise AnchorConfigError(f"{where}: {text!r} contains {' '.join(repr(c) for c in bad)}, "
                                f"which a {target} output may not")


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise AnchorConfigError(f"{path}: no such {what} (anchored translation needs one per direction)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise AnchorConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise AnchorConfigError(f"{path}: expected a mapping at the top level")
    return data


def _pair(item: Any, where: str) -> tuple[str, str]:
    if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) and x.strip() for x in item)):
        raise AnchorConfigError(f"{where}: expected [source, target], two non-empty strings, got {item!r}")
    return item[0], item[1]


def _text_example(item: Any, where: str) -> TextExample:
    if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("source", "target")):
        raise AnchorConfigError(f"{where}: expected a mapping with string `source`, `target` and a `terms` list")
    terms = tuple(_pair(t, f"{where}.terms[{j}]") for j, t in enumerate(item.get("terms") or []))
    return TextExample(item["source"], terms, item["target"])


def first_line(answer: str) -> str:
    """The answer up to its first line break, without surrounding blanks."""
    return re.split(r"[\r\n]", answer, maxsplit=1)[0].strip()
