"""The model release (stage ``release_model``, after ``evaluate``): the trained folder as a Hugging Face model repository.

``run`` copies every file of the train stage's folder but its card (byte copies, never links: DVC's cache stores
identical content once anyway) and writes ``README.md``, a card built with ``huggingface_hub``'s ``ModelCard``: YAML
metadata (base model hub id and licence from params, ``model-index`` with the TL / WL / ALL F1 of ``evaluate.out``
per language and per sub-dataset) and the prose of ``resources/model_card.md``. The card's usage example is run by the
stage itself, a plain transformers text-generation pipeline on ``release_model.example``; an answer that runs past
the first line fails the stage, since the folder's stop rule would then not work in standard tools.

Every fact comes from params or from a file of the run, and nothing depends on when the stage ran, so a rerun writes
the same bytes.
"""

from __future__ import annotations

import shlex
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mmm import publish, registry
from mmm.config import Params, ReleaseModelConfig
from mmm.errors import DataError, MMMError, require_file
from mmm.io import portable_path, read_records, read_text, write_json
from mmm.modeling.card import data_summary as train_data_summary

CARD = "README.md"
LEVELS = ("TL", "WL", "ALL")
TASK_TYPE = "text-generation"


class ReleaseError(MMMError):
    """The release folder would not work as promised (its example answer runs past one line)."""


def inputs(params: Params) -> list[Path]:
    """What the stage reads (its deps in dvc.yaml): the trained folder, the scores and how the predictions behind them
    were decoded, the training run's metrics and data, the base model folder (for its conversion record)."""
    train = params.train
    return [train.out, params.evaluate.out, params.predict.metrics, train.metrics, train.train_file, train.base_model]


def _json(path: Path) -> dict[str, Any]:
    import json

    require_file(path, "metrics file")
    try:
        return json.loads(read_text(path))
    except ValueError as exc:
        raise DataError(f"{path}: not JSON ({exc})") from None


def score_rows(scores: dict[str, Any], source: Path) -> list[dict[str, Any]]:
    """One row per language (``dataset`` "all": the mean over its sub-datasets) and per (language, sub-dataset), with
    the levels the evaluation scored (a text-only or word-only model is scored on TL or WL and ALL alone)."""

    def levels(cell: dict[str, Any]) -> dict[str, float]:
        found = {level: cell[level] for level in LEVELS if level in cell}
        if not found:
            raise KeyError(" / ".join(LEVELS))
        return found

    try:
        rows = []
        for lang, cells in scores["metrics"].items():
            rows.append({"lang": lang, "dataset": "all", "n": sum(c["n"] for c in cells.values()),
                         "scores": levels(scores["macro"][lang])})
            rows += [{"lang": lang, "dataset": name, "n": cell["n"], "scores": levels(cell)} for name, cell in cells.items()]
    except (KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{source}: not the evaluate stage's metrics (no {exc} where metrics[lang][dataset] and "
                        "macro[lang] hold n and the F1 of TL, WL or ALL)") from None
    if not rows:
        raise DataError(f"{source}: no scores to release")
    return rows


def eval_results(rows: list[dict[str, Any]], cfg: ReleaseModelConfig, split: str = "test") -> list[Any]:
    """The ``model-index`` entries: per row, TL / WL / ALL F1 (%) on the dataset configuration ``<lang>[-<DATASET>]``."""
    from huggingface_hub import EvalResult

    results = []
    for row in rows:
        cell = row["lang"] if row["dataset"] == "all" else f"{row['lang']}-{row['dataset']}"
        about = "mean over its sub-datasets" if row["dataset"] == "all" else f"{row['n']} rows"
        for level, value in row["scores"].items():
            results.append(EvalResult(
                task_type=TASK_TYPE, task_name="MMM open information extraction",
                dataset_type=cfg.eval_dataset.id, dataset_name=f"{cfg.eval_dataset.name} {cell} ({about})",
                dataset_config=cell, dataset_split=split,
                metric_type="f1", metric_name=f"{level} F1 (%)", metric_value=value))
    return results


def card_data(cfg: ReleaseModelConfig, rows: list[dict[str, Any]]) -> Any:
    from huggingface_hub import ModelCardData

    return ModelCardData(
        model_name=cfg.name, base_model=cfg.base_model_id, license=cfg.license, datasets=cfg.datasets or None,
        language=sorted({row["lang"] for row in rows}), library_name="transformers", pipeline_tag=TASK_TYPE,
        tags=["information-extraction", "mutual-reinforcement-effect", "mmm", "oiellm"], metrics=["f1"],
        eval_results=eval_results(rows, cfg),
    )


def data_summary(path: Path) -> dict[str, Any]:
    """The training file as the card names it: train's own summary (path, rows, sha256, rows per cell) and the
    cells as one line."""
    summary = train_data_summary(path, read_records(path))
    return {**summary, "cells": ", ".join(f"{cell} {n}" for cell, n in summary["rows_by_cell"].items())}


def decoding(params: Params) -> dict[str, Any]:
    """How the scored predictions were decoded: ``predict``'s metrics (constraints, relabelling) and its compute dtype."""
    predicted = _json(params.predict.metrics)
    try:
        return {"constrained": predicted["constrained"], "rescore_labels": predicted["rescore_labels"],
                "label_prototypes": predicted.get("label_prototypes", False), "dtype": params.predict.dtype}
    except (KeyError, TypeError):
        raise DataError(f"{params.predict.metrics}: not the predict stage's metrics (no constrained, rescore_labels)") from None


def train_params(params: Params) -> dict[str, Any]:
    """The train section as the card shows it: the settings of :meth:`TrainConfig.to_params`, paths as portable ones."""
    shown = params.train.to_params()
    return {key: portable_path(getattr(params.train, key)) if isinstance(getattr(params.train, key), Path) else value
            for key, value in shown.items()}


def copy_model(source: Path, target: Path) -> list[str]:
    """Copy every file of the model folder but its card into ``target``; returns the names copied."""
    if not (source / "config.json").is_file():
        raise DataError(f"{source}: not a model folder (no config.json); run the train stage first")
    names = []
    for path in sorted(source.iterdir()):
        if path.name == CARD:
            continue
        if not path.is_file():
            raise DataError(f"{path}: a model folder holds files only")
        shutil.copyfile(path, target / path.name)
        names.append(path.name)
    return names


def run_example(folder: Path, example: str) -> str:
    """The card's usage snippet, run: a text-generation pipeline on ``example`` + newline, the new text only."""
    from transformers import pipeline

    pipe = pipeline("text-generation", model=str(folder))
    answer = pipe(example + "\n", return_full_text=False)[0]["generated_text"]
    if "\n" in answer.rstrip("\n"):
        raise ReleaseError(f"{folder}: the text-generation pipeline ran past the answer's line for {example!r}: "
                           f"{answer!r}; its generation_config.json must stop at the newline")
    return answer


def render(params: Params, cfg: ReleaseModelConfig, folder: Path, rows: list[dict[str, Any]], scores: dict[str, Any],
           answer: str) -> str:
    """The card's text: metadata from :func:`card_data`, prose from the template with this run's facts."""
    from huggingface_hub import ModelCard

    train = params.train
    text, task = cfg.example.rsplit("/", 1)
    generation = _json(folder / "generation_config.json")
    conversion = train.base_model / "conversion.json"
    fields = {
        "paper": cfg.paper, "base_path": portable_path(train.base_model), "folder": portable_path(cfg.out_dir),
        "target": _json(folder / "oiellm.json")["target"], "max_new_tokens": generation["max_new_tokens"],
        "title": cfg.name, "tasks": [f"{k.name}: " + ", ".join(f"`{w}`" for w in k.instructions) for k in registry.kinds()],
        "example_input_repr": repr(cfg.example), "example_answer_repr": repr(answer),
        "extract_text": shlex.quote(text), "extract_task": shlex.quote(task),
        "rows": scores.get("rows"), "mode": scores.get("mode"), "decoding": decoding(params), "save_dtype": train.save_dtype,
        "score_rows": rows, "conversion": _json(conversion) if conversion.is_file() else None,
        "data": data_summary(train.train_file), "run": _json(train.metrics),
        "train_params": yaml.safe_dump(train_params(params), allow_unicode=True, sort_keys=False).strip(),
    }
    template = resources.files("mmm.resources").joinpath("model_card.md").read_text(encoding="utf-8")
    card = ModelCard.from_template(card_data(cfg, rows), template_str=template, **fields)
    return str(card).rstrip("\n") + "\n"


def run(params: Params, cfg: ReleaseModelConfig) -> dict[str, Any]:
    """Write ``cfg.out_dir`` (the model's files and its card) and ``cfg.metrics``; returns the metrics."""
    model, scores_file = params.train.out, params.evaluate.out
    targets = {"out": cfg.out_dir, "metrics": cfg.metrics}
    with publish.outputs(targets, inputs=inputs(params), folders=["out"]) as out:
        scores = _json(scores_file)
        rows = score_rows(scores, scores_file)
        files = copy_model(model, out["out"])
        answer = run_example(out["out"], cfg.example)
        (out["out"] / CARD).write_text(render(params, cfg, out["out"], rows, scores, answer), encoding="utf-8")
        result = {"files": [*files, CARD], "model_index_results": sum(len(row["scores"]) for row in rows),
                  "example": {"input": cfg.example, "answer": answer}}
        write_json(out["metrics"], result)
    return result
