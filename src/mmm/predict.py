"""Batched greedy generation with a trained OIELLM: the test-set predictions and ``mmm extract``.

Prompts are tokenized exactly as in training (:mod:`mmm.modeling.sequence`), sorted by length
and generated in left-padded batches with the KV cache; a row stops at EOS or at its first
newline (the separator the model was trained to answer after, and which never occurs in an
answer). The predictions file is the evaluator's input: one row per test record with
``id, lang, dataset, input, output`` (the gold joint output), ``prediction`` (the generation,
in the model's target format), ``target`` and ``finish`` (``eos``, ``newline`` or
``max_new_tokens``, so truncations are visible).

Under ``accelerate launch`` with several processes each rank generates a slice and rank 0
writes the file; run as a plain script it is one process.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmm.config import PredictConfig
from mmm.io import read_records, write_json, write_jsonl
from mmm.modeling.loading import DTYPES, check_model_dir, load_model, load_tokenizer, read_format
from mmm.modeling.sequence import SEPARATOR, dataset_for_task, encode_prompt, parse_prediction
from mmm.modeling.world import cpu_world
from mmm.records import FormatError, format_input, split_input
from mmm.split import rank_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Generation:
    text: str
    finish: str  # eos | newline | max_new_tokens
    new_tokens: int


def stop_token_ids(tokenizer: Any, model: Any) -> tuple[set[int], set[int]]:
    """(EOS ids, ids of tokens whose text contains a newline): generation stops at either.

    Tokenizers fold newlines into many tokens (``\\n``, ``\\n\\n``, ``.\\n``...), so the set is
    found by decoding the whole vocabulary once; a token that merely *contains* the newline
    still ends the row, and the text is cut at the newline afterwards.
    """
    eos = {tokenizer.eos_token_id}
    configured = getattr(model.generation_config, "eos_token_id", None)
    if configured is not None:
        eos |= set(configured) if isinstance(configured, (list, tuple)) else {configured}
    special = set(tokenizer.all_special_ids)
    ids = list(range(len(tokenizer)))
    texts = tokenizer.batch_decode([[i] for i in ids], skip_special_tokens=False)
    newline = {i for i, text in zip(ids, texts) if SEPARATOR in text and i not in special}
    return eos, newline - eos


class Generator:
    """A loaded model ready for batched greedy generation in its training format."""

    def __init__(self, model_dir: str | Path, dtype: str = "float32", device: Any = None):
        import torch

        self.model_dir = check_model_dir(model_dir)
        self.format = read_format(model_dir)
        self.tokenizer = load_tokenizer(model_dir, padding_side="left")
        self.model = load_model(model_dir, dtype)
        self.device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.eos_ids, self.newline_ids = stop_token_ids(self.tokenizer, self.model)

    @property
    def target(self) -> str:
        return self.format["target"]

    def generate(self, inputs: list[str], max_new_tokens: int = 128, batch_size: int = 16,
                 progress: bool = False, min_new_tokens: int = 0) -> list[Generation]:
        """Greedy answers for ``inputs`` (record inputs ``text/INSTRUCT``), in input order."""
        from tqdm.auto import tqdm

        prompts = [encode_prompt(self.tokenizer, text) for text in inputs]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
        results: list[Generation | None] = [None] * len(prompts)
        bar = tqdm(total=len(prompts), desc="predict", disable=not progress)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            for i, generation in zip(chunk, self._generate_batch([prompts[i] for i in chunk], max_new_tokens, min_new_tokens)):
                results[i] = generation
            bar.update(len(chunk))
        bar.close()
        return results  # type: ignore[return-value]

    def _generate_batch(self, prompts: list[list[int]], max_new_tokens: int, min_new_tokens: int) -> list[Generation]:
        import torch
        from transformers import GenerationConfig

        pad = self.tokenizer.pad_token_id
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):  # left padding: every prompt ends where generation starts
            input_ids[row, width - len(prompt):] = torch.tensor(prompt)
            attention[row, width - len(prompt):] = 1
        config = GenerationConfig(
            max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens, do_sample=False, num_beams=1,
            use_cache=True, pad_token_id=pad, eos_token_id=sorted(self.eos_ids | self.newline_ids),
        )
        with torch.inference_mode():
            output = self.model.generate(input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
                                         generation_config=config)
        results = []
        for row in output[:, width:].tolist():
            finish, used = "max_new_tokens", row
            for n, token in enumerate(row):
                if token in self.eos_ids or token in self.newline_ids:
                    finish = "eos" if token in self.eos_ids else "newline"
                    used = row[:n + 1]
                    break
            text = self.tokenizer.decode(used, skip_special_tokens=True).split(SEPARATOR, 1)[0].strip()
            results.append(Generation(text, finish, len(used)))
        return results


def cap_per_cell(records: list[dict], cap: int | None, seed: int) -> list[dict]:
    """At most ``cap`` rows per (lang, dataset), chosen by a seeded hash of the id; file order kept."""
    if cap is None:
        return records
    by_cell: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        by_cell[(record["lang"], record["dataset"])].append(i)
    chosen: set[int] = set()
    for indices in by_cell.values():
        chosen.update(sorted(indices, key=lambda i: rank_key(seed, records[i]["id"]))[:cap])
    return [r for i, r in enumerate(records) if i in chosen]


def well_formed(prediction: str, record: dict, target: str) -> bool:
    try:
        _, instruct = split_input(record["input"], record["dataset"])
        parse_prediction(prediction, record["dataset"], instruct, target)
    except FormatError:
        return False
    return True


def run(cfg: PredictConfig, test_path: str | Path, out_path: str | Path, metrics_path: str | Path) -> dict[str, Any]:
    """Predict the (capped) test set; rank 0 writes predictions and metrics."""
    from accelerate import PartialState
    from accelerate.utils import gather_object

    import torch

    wall_start = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    state = PartialState(cpu=cpu_world())
    records = read_records(test_path)
    chosen = cap_per_cell(records, cfg.max_rows_per_cell, cfg.seed)
    generator = Generator(cfg.model, cfg.dtype, state.device)
    start = time.perf_counter()
    with state.split_between_processes(chosen) as mine:
        generations = generator.generate([r["input"] for r in mine], cfg.max_new_tokens, cfg.batch_size,
                                         progress=state.is_local_main_process)
        rows = [{**{k: r[k] for k in ("id", "lang", "dataset", "input", "output")}, "prediction": g.text,
                 "target": generator.target, "finish": g.finish, "_new_tokens": g.new_tokens}
                for r, g in zip(mine, generations)]
    if state.num_processes > 1:
        rows = gather_object(rows)
    generate_time = time.perf_counter() - start
    metrics: dict[str, Any] = {}
    if state.is_main_process:
        new_tokens = sum(row.pop("_new_tokens") for row in rows)
        cells: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
        for (lang, dataset), group in _group(rows).items():
            cells[lang][dataset] = {
                "rows": len(group),
                "well_formed": sum(well_formed(r["prediction"], r, r["target"]) for r in group),
                "truncated": sum(r["finish"] == "max_new_tokens" for r in group),
            }
        metrics = {
            "model": cfg.model,
            "target": generator.target,
            "test_rows": len(records),
            "predicted_rows": len(rows),
            "skipped_by_cap": len(records) - len(chosen),
            "well_formed": sum(c["well_formed"] for lang in cells.values() for c in lang.values()),
            "finish": dict(Counter(r["finish"] for r in rows)),
            "new_tokens": new_tokens,
            "new_tokens_per_s": round(new_tokens / generate_time, 1) if generate_time > 0 else None,
            "generate_time_s": round(generate_time, 1),
            "wall_time_s": round(time.perf_counter() - wall_start, 1),
            "processes": state.num_processes,
            "cells": dict(cells),
        }
        write_jsonl(out_path, rows)
        write_json(metrics_path, metrics)
    state.wait_for_everyone()
    return metrics


def _group(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["lang"], row["dataset"])].append(row)
    return dict(sorted(groups.items()))


@dataclass(frozen=True)
class Extraction:
    input: str
    raw: str
    target: str
    text_label: str | None = None
    pairs: tuple[tuple[str, ...], ...] | None = None
    error: str | None = None


def extract(text: str, task: str, generator: Generator, max_new_tokens: int = 128) -> Extraction:
    """Run the model on one plain text with an instruction word (``NER``, ``Sentiment Adj``...)."""
    dataset = dataset_for_task(task)
    input_ = format_input(text, task)
    raw = generator.generate([input_], max_new_tokens=max_new_tokens, batch_size=1)[0].text
    try:
        parsed = parse_prediction(raw, dataset, task, generator.target)
    except FormatError as exc:
        return Extraction(input_, raw, generator.target, error=str(exc))
    return Extraction(input_, raw, generator.target, parsed.text_label, parsed.pairs)
