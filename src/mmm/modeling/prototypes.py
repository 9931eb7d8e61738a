"""Word labels chosen by label prototypes: each entity of an answer takes the closed-set label whose mean
hidden state, over the training entities of that label, is nearest to the entity's own.

A small model picks the span of an entity far better than its type: its greedy label is written *before* the
entity and mostly repeats the answer's first label. Its hidden states still separate the types. At the end of
training, every entity of the training rows of ``datasets`` is read at its first occurrence in its prompt (the
mean of the hidden states of the tokens it covers, L2-normalised), and each label's vectors are averaged into a
prototype. Labels are pooled across languages by their row in the registry (``人名`` = ``Person`` = ``人名``),
so a language with few rows borrows the others'. The layer is chosen on the training rows alone: the one with
the best leave-one-row-out accuracy among ``layers``; never the test set.

At prediction time the generated entities keep their spans, order and text label; only the label of each
piece is re-picked, among the row's allowed labels, by cosine similarity. The folder holds the prototypes as
``label_prototypes.safetensors`` (one ``[labels, hidden]`` matrix per dataset; a label without training
entities is a zero row and never wins) and ``label_prototypes.json`` (layer, counts, the selection scores).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmm import registry
from mmm.modeling.sequence import parse_prediction, prompt_text, with_labels
from mmm.records import FormatError, split_input
from mmm.scripts import guess_lang

WEIGHTS = "label_prototypes.safetensors"
META = "label_prototypes.json"
BATCH = 16


@dataclass(frozen=True)
class Prototypes:
    """Per dataset, one unit vector per registry label row (zero: no training entity had that label)."""

    layer: int
    vectors: dict[str, Any]  # dataset -> torch tensor [labels, hidden]
    meta: dict[str, Any]

    def choose(self, dataset: str, lang: str, vector: Any, allowed: Sequence[str]) -> str | None:
        """The label of ``allowed`` (labels of ``lang``) nearest to ``vector``; None if ``dataset`` has no prototypes,
        or an allowed label is not in ``lang``'s inventory or has no prototype."""
        table = self.vectors.get(dataset)
        inventory = registry.kind(dataset).word_inventory(lang) or ()
        if table is None or not allowed or any(label not in inventory for label in allowed):
            return None
        rows = [inventory.index(label) for label in allowed]
        if any(not bool(table[r].any()) for r in rows):
            return None
        return allowed[int((table[rows] @ vector.to(table.dtype)).argmax())]


def _positions(offsets: Sequence[tuple[int, int]], start: int, end: int) -> list[int]:
    """Token indices whose characters overlap [start, end) (special tokens have empty spans)."""
    return [i for i, (a, b) in enumerate(offsets) if b > a and b > start and a < end]


def entity_vectors(model: Any, tokenizer: Any, items: Sequence[tuple[str, str, Sequence[str]]],
                   layers: Sequence[int], batch_size: int = BATCH) -> list[list[dict[int, Any] | None]]:
    """For each ``(input, dataset, entities)``: per entity, its unit vector at each of ``layers`` (None when the
    entity is not in the text). One forward pass per batch of prompts, right-padded (a causal model's states
    at real tokens do not see the padding)."""
    import torch

    out: list[list[dict[int, Any] | None]] = []
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        encoded = [tokenizer(prompt_text(input_), add_special_tokens=True, return_offsets_mapping=True)
                   for input_, _, _ in chunk]
        width = max(len(e["input_ids"]) for e in encoded)
        ids = torch.tensor([e["input_ids"] + [pad] * (width - len(e["input_ids"])) for e in encoded], device=device)
        mask = torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in encoded],
                            device=device)
        with torch.inference_mode():  # the decoder alone: projecting every position onto the vocabulary would cost more
            hidden = model.get_decoder()(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        for row, ((input_, dataset, entities), enc) in enumerate(zip(chunk, encoded)):
            text = split_input(input_, dataset)[0]
            vectors: list[dict[int, Any] | None] = []
            for entity in entities:
                at = text.find(entity) if entity else -1
                tokens = _positions(enc["offset_mapping"], at, at + len(entity)) if at >= 0 else []
                if not tokens:
                    vectors.append(None)
                    continue
                vectors.append({layer: torch.nn.functional.normalize(hidden[layer][row, tokens].float().mean(0), dim=0).cpu()
                                for layer in layers})
            out.append(vectors)
    return out


def _label_rows(dataset: str) -> int:
    """How many word labels ``dataset`` has (its registry rows, the same in every language)."""
    return max(len(labels) for labels in registry.kind(dataset).word_labels.values())


def _training_entities(records: Sequence[dict], datasets: Sequence[str]) -> list[tuple[dict, list[tuple[int, str]]]]:
    """(record, [(label row, entity)]) for the records of ``datasets`` (labels outside the inventory skipped)."""
    found = []
    for record in records:
        dataset = record["dataset"]
        if dataset not in datasets:
            continue
        kind = registry.kind(dataset)
        inventory = kind.word_inventory(record["lang"]) or ()
        task = split_input(record["input"], dataset)[1]
        pairs = parse_prediction(record["output"], dataset, task, "joint").pairs
        field, entity_field = kind.label_field, kind.entity_fields()[0]
        labelled = [(inventory.index(p[field]), p[entity_field]) for p in pairs if p[field] in inventory]
        if labelled:
            found.append((record, labelled))
    return found


def _loo_accuracy(x: Any, y: Any, groups: Any, labels: int) -> float:
    """Accuracy of nearest-prototype labels when each entity's own row is left out of the prototypes."""
    import torch

    sums = torch.zeros(labels, x.shape[1]).index_add_(0, y, x)
    correct = 0
    for group in groups.unique():
        own = groups == group
        held = sums - torch.zeros_like(sums).index_add_(0, y[own], x[own])
        scores = x[own] @ torch.nn.functional.normalize(held, dim=1).T
        scores[:, held.norm(dim=1) == 0] = -2.0  # a label seen only in this row cannot be predicted
        correct += int((scores.argmax(1) == y[own]).sum())
    return correct / len(y)


def build(model: Any, tokenizer: Any, records: Sequence[dict], datasets: Sequence[str],
          layers: Sequence[int]) -> Prototypes | None:
    """Prototypes of ``datasets`` from training ``records`` at the layer chosen by leave-one-row-out accuracy
    (ties: the earlier layer of ``layers``); None if no record of those datasets has a labelled entity."""
    import torch

    found = _training_entities(records, datasets)
    if not found:
        return None
    hidden_layers = model.config.num_hidden_layers
    bad = [layer for layer in layers if not 0 < layer <= hidden_layers]
    if bad:
        raise ValueError(f"prototype layers {bad} outside 1..{hidden_layers} (the model's layers)")
    items = [(r["input"], r["dataset"], [e for _, e in labelled]) for r, labelled in found]
    vectors = entity_vectors(model, tokenizer, items, layers)
    per_dataset: dict[str, list[tuple[int, int, dict[int, Any]]]] = {}
    for row, ((record, labelled), row_vectors) in enumerate(zip(found, vectors)):
        for (label, _), vector in zip(labelled, row_vectors):
            if vector is not None:
                per_dataset.setdefault(record["dataset"], []).append((row, label, vector))
    selection: dict[int, float] = {}
    for layer in layers:
        correct = total = 0
        for dataset, entries in per_dataset.items():
            x = torch.stack([v[layer] for _, _, v in entries])
            y = torch.tensor([label for _, label, _ in entries])
            groups = torch.tensor([row for row, _, _ in entries])
            correct += _loo_accuracy(x, y, groups, _label_rows(dataset)) * len(entries)
            total += len(entries)
        selection[layer] = round(correct / total, 4)
    best = max(layers, key=lambda layer: (selection[layer], -list(layers).index(layer)))
    tables, counts = {}, {}
    for dataset, entries in per_dataset.items():
        size = _label_rows(dataset)
        y = torch.tensor([label for _, label, _ in entries])
        sums = torch.zeros(size, entries[0][2][best].shape[0]).index_add_(0, y, torch.stack([v[best] for _, _, v in entries]))
        tables[dataset] = torch.nn.functional.normalize(sums, dim=1)
        counts[dataset] = torch.bincount(y, minlength=size).tolist()
    meta = {"layer": best, "datasets": sorted(tables), "entities": counts,
            "leave_one_row_out_accuracy": {str(k): v for k, v in selection.items()}}
    return Prototypes(best, tables, meta)


def save(prototypes: Prototypes, folder: str | Path) -> None:
    from safetensors.torch import save_file

    folder = Path(folder)
    save_file({k: v.contiguous() for k, v in prototypes.vectors.items()}, str(folder / WEIGHTS))
    (folder / META).write_text(json.dumps(prototypes.meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def load(folder: str | Path) -> Prototypes | None:
    """The folder's prototypes, or None if it has none (a model trained before them, or without datasets)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / WEIGHTS).is_file() or not (folder / META).is_file():
        return None
    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    return Prototypes(int(meta["layer"]), load_file(str(folder / WEIGHTS)), meta)


def row_labels(dataset: str, text: str, generated: Sequence[str], allowed: Sequence[str]) -> tuple[str, list[str]] | None:
    """The language an answer's labels are written in and the allowed labels of that language, so a relabelled
    answer never switches language when ``allowed`` spans several (``mmm extract`` without ``--lang``). The
    language is the one whose inventory holds every generated label; when two do (``人名`` is Japanese and
    Chinese), the script of the text decides (:func:`mmm.scripts.guess_lang`). None when a generated or an allowed
    label is in no inventory (a ``--labels`` list of the user's own): such a row keeps its labels."""
    inventories = registry.kind(dataset).word_labels
    known = {label for labels in inventories.values() for label in labels}
    langs = [lang for lang, labels in inventories.items() if all(g in labels for g in generated)]
    if not langs or any(label not in known for label in allowed):
        return None
    lang = guess_lang(text) if guess_lang(text) in langs else langs[0]
    return lang, [label for label in allowed if label in inventories[lang]]


def relabel(model: Any, tokenizer: Any, prototypes: Prototypes, inputs: Sequence[str], answers: Sequence[str],
            datasets: Sequence[str], allowed: Sequence[Sequence[str] | None], target: str) -> tuple[list[str], int]:
    """``answers`` with each word label re-picked by the nearest prototype, and how many labels changed.

    A row keeps its answer when it has no closed label set (``allowed`` None), its dataset has no prototypes,
    its labels are not all of one inventory (:func:`row_labels`), one of its allowed labels has no prototype, or
    the answer does not parse. A relabelled answer that repeats a piece keeps the first."""
    todo = []
    for i, (input_, answer, dataset, labels) in enumerate(zip(inputs, answers, datasets, allowed)):
        if not labels or dataset not in prototypes.vectors or target == "text_only":
            continue
        text, task = split_input(input_, dataset)
        try:
            parsed = parse_prediction(answer, dataset, task, target)
        except FormatError:
            continue
        kind, pieces = registry.kind(dataset), list(parsed.pairs or ())
        found = row_labels(dataset, text, [p[kind.label_field] for p in pieces], labels) if pieces else None
        if found is not None:
            todo.append((i, task, parsed.text_label, pieces, kind, *found))
    vectors = entity_vectors(model, tokenizer, [(inputs[i], datasets[i], [p[kind.entity_fields()[0]] for p in pieces])
                                                for i, _, _, pieces, kind, _, _ in todo], [prototypes.layer])
    out, changed = list(answers), 0
    for (i, task, text_label, pieces, kind, lang, labels), row in zip(todo, vectors):
        choices = [None if v is None else prototypes.choose(datasets[i], lang, v[prototypes.layer], labels) for v in row]
        out[i], n = with_labels(target, text_label, task, pieces, kind.label_field, choices)
        changed += n
    return out, changed
