"""Data stages, in pipeline order: ingest, label-map, translate, filter, check, assemble, validate, split, funnel,
release-data."""

from __future__ import annotations

from pathlib import Path

import typer

from mmm import config
from mmm.cli.choices import Backend, Lang, Method, value
from mmm.cli.common import ITEM_HELP, PARAMS, interruptible, item_config
from mmm.errors import ParamsError

PANEL = "1. Data"


def register(app: typer.Typer) -> None:
    from mmm.cli import review, tconer

    app.command("ingest", rich_help_panel=PANEL)(interruptible(ingest))
    app.add_typer(tconer.app, name="tconer", rich_help_panel=PANEL)
    local = (label_map, filter_, check, assemble, validate, split, funnel, release_data)  # local computation: stop at once on Ctrl-C
    for command in (label_map, translate, filter_, check, assemble, validate, split, funnel, release_data):
        name = command.__name__.rstrip("_").replace("_", "-")
        app.command(name, rich_help_panel=PANEL)(interruptible(command) if command in local else command)
        if command is translate:
            app.add_typer(review.app, name="review", rich_help_panel=PANEL)


def ingest(params: Path = PARAMS) -> None:
    """Gather raw sources (the sample, local files or hub ids) into checked JSONL."""
    from mmm.ingest import run

    cfg = config.load(params)
    result = run(cfg.ingest, cfg.hub.allow_network)
    total = sum(v["total"] for v in result["sources"].values())
    typer.echo(f"ingest: {total} source rows -> {cfg.ingest.sources}")


def label_map(
    input_path: Path | None = typer.Argument(None, metavar="[INPUT.jsonl]", help="Japanese MMM records (default: label_map.input)"),
    out_dir: Path | None = typer.Option(None, help="folder for one <lang>.jsonl per target (default: label_map.out_dir)"),
    metrics: Path | None = typer.Option(None, help="row and label counts, JSON (default: label_map.metrics)"),
    params: Path = PARAMS,
) -> None:
    """Map every text- and word-level label to English/Chinese by the registry's tables; fail on any gap."""
    from mmm.translate import label_map as lm

    cfg = config.load(params).label_map.with_flags(input=input_path, out_dir=out_dir, metrics=metrics)
    result = lm.run(cfg.input, cfg.out_dir, list(cfg.langs), cfg.metrics, cfg.source)
    counts = ", ".join(f"{lang} {row['rows']}" for lang, row in result["langs"].items())
    typer.echo(f"label-map: {result['input_rows']} rows, every label mapped -> {counts} in {cfg.out_dir}")


def translate(
    input_path: Path | None = typer.Argument(None, metavar="[INPUT.jsonl]", help="rows with mapped labels, or TCONER rows"),
    item: str | None = typer.Option(None, help=ITEM_HELP + " (translate.items: en, zh, tconer_ja, tconer_zh)"),
    to: Lang | None = typer.Option(None, "--to", help="target language"),
    out: Path | None = typer.Option(None, help="translated MMM records"),
    failed: Path | None = typer.Option(None, help="rows that could not be translated, each with its 'reasons'"),
    metrics: Path | None = typer.Option(None, help="counts, failures by reason and quality (JSON)"),
    references: Path | None = typer.Option(None, help="reference translations (same ids) for chrF / entity alignment"),
    method: Method | None = typer.Option(None, help="translation method (default: translate.method, anchored)"),
    backend: Backend | None = typer.Option(None, help="LLM backend (default: llm.backend)"),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible endpoint (default: llm.base_url, $OPENAI_BASE_URL)"),
    model: str | None = typer.Option(None, help="model name served by the API (default: llm.model)"),
    model_dir: Path | None = typer.Option(None, help="local model folder for --backend local (default: llm.local_model_dir)"),
    cache_dir: Path | None = typer.Option(None, help="LLM answer cache folder (default: llm.cache_dir)"),
    concurrency: int | None = typer.Option(None, help="requests in flight (openai)"),
    max_requests: int | None = typer.Option(None, help="send at most this many prompts; exit 75, rerun to continue"),
    max_cost_usd: float | None = typer.Option(None, help="stop before the estimated cost passes this; exit 75"),
    estimate: bool = typer.Option(False, "--estimate", help="print the bill (requests, tokens, USD; whole and after "
                                  "the cache) and exit: nothing is sent, no connection opened, no key needed"),
    all_items: bool = typer.Option(False, "--all-items", help="with --estimate: every translate.items entry, one table"),
    estimate_json: Path | None = typer.Option(None, "--json", help="with --estimate: also write the estimate as JSON"),
    params: Path = PARAMS,
) -> None:
    """Translate MMM records with an LLM; every row ends translated, failed (with reasons) or pending."""
    from mmm.translate.run import settings_for, summary_line, translate_file

    cfg = config.load(params)
    if all_items or estimate_json is not None:
        if not estimate:
            raise ParamsError("--all-items and --json go with --estimate")
    if all_items and (item is not None or input_path is not None):
        raise ParamsError("--all-items estimates every translate.items entry: drop --item and INPUT")
    if estimate:
        from mmm.translate.estimate import run_estimate

        jobs = ({name: it.with_flags(to=value(to)) for name, it in cfg.translate.items.items()} if all_items else
                {item or "-": item_config(cfg.translate.items, config.TranslateItem, "translate", item, input=input_path,
                                          to=value(to), out=out or Path("-"), failed=failed or Path("-"),
                                          metrics=metrics, references=references)})
        llm = cfg.llm.with_flags(backend=value(backend), base_url=base_url, model=model, local_model_dir=model_dir,
                                 cache_dir=cache_dir)
        typer.echo(run_estimate(jobs, settings_for(cfg.translate.with_flags(method=value(method))), llm,
                                  cfg.translate.seed, estimate_json))
        return
    job = item_config(cfg.translate.items, config.TranslateItem, "translate", item, input=input_path, to=value(to),
                      out=out, failed=failed, metrics=metrics, references=references)
    settings = settings_for(cfg.translate.with_flags(method=value(method)))
    llm = cfg.llm.with_flags(backend=value(backend), base_url=base_url, model=model, local_model_dir=model_dir,
                             cache_dir=cache_dir, concurrency=concurrency, max_requests=max_requests,
                             max_cost_usd=max_cost_usd)
    result = translate_file(job.input, job.to, job.out, job.failed, settings, llm, job.metrics, job.references,
                            log_dir=cfg.logs.dir, log_name=f"translate_{item}" if item else None,
                            sample=job.sample, seed=cfg.translate.seed, overrides=job.overrides)
    typer.echo(summary_line(result))


def filter_(
    input_path: Path | None = typer.Argument(None, metavar="[INPUT.jsonl]", help="translated MMM records"),
    item: str | None = typer.Option(None, help=ITEM_HELP + " (filter.items)"),
    lang: Lang | None = typer.Option(None, help="the language every row is in"),
    kept: Path | None = typer.Option(None, help="rows that pass all rules"),
    rejected: Path | None = typer.Option(None, help="rows that break a rule, each with its 'reasons'"),
    metrics: Path | None = typer.Option(None, help="retention per dataset and reason (JSON)"),
    rules: str | None = typer.Option(None, help="content rules that reject, comma-separated ('' waives both; bad_format "
                                     "always runs); default: the item's rules, without --item "
                                     + ",".join(config.CONTENT_RULES)),
    params: Path = PARAMS,
) -> None:
    """Reject rows with residual Japanese, entities missing from the text, or a broken MMM format."""
    from mmm.filters import filter_file

    chosen = None if rules is None else [name.strip() for name in rules.split(",") if name.strip()]
    if chosen is None and item is None:
        chosen = list(config.CONTENT_RULES)
    job = item_config(config.load(params).filter.items, config.FilterItem, "filter", item, input=input_path, lang=value(lang),
                      rules=chosen, kept=kept, rejected=rejected, metrics=metrics)
    result = filter_file(job.input, job.lang, job.kept, job.rejected, job.metrics, job.rules)
    typer.echo(result.summary(job.lang))


def check(files: list[Path] = typer.Argument(..., metavar="FILE.jsonl...", help="JSONL files of MMM records")) -> None:
    """Check that every row of MMM record files parses; lists every bad row with file:line."""
    from mmm.io import check_record_files

    total = check_record_files(files)
    typer.echo(f"ok: {total} records in {len(files)} file(s)")


def assemble(
    inputs: list[Path] | None = typer.Argument(None, metavar="[KEPT.jsonl...]", help="filtered parts (default: the kept files of assemble.items)"),
    out: Path | None = typer.Option(None, help="the MMM dataset (default: assemble.out)"),
    metrics: Path | None = typer.Option(None, help="Table 2 counts, JSON (default: assemble.metrics)"),
    report: Path | None = typer.Option(None, help="Table 2 as Markdown (default: assemble.report)"),
    params: Path = PARAMS,
) -> None:
    """Concatenate the filtered parts of every language into the released MMM dataset (Table 2 counts)."""
    from mmm.assemble import run

    params_ = config.load(params)
    cfg = params_.assemble.with_flags(out=out, metrics=metrics, report=report)
    result = run(inputs or params_.assemble_inputs(), cfg.out, cfg.metrics, cfg.report)
    totals = ", ".join(f"{lang} {row['total']}" for lang, row in result["table2"].items())
    typer.echo(f"assemble: {totals} -> {cfg.out}")


def validate(
    write_suites: bool = typer.Option(False, "--write-suites", help="regenerate the suites in validate.gx_dir and exit"),
    params: Path = PARAMS,
) -> None:
    """Run the Great Expectations suites over the datasets in validate.checks; exit 1 if any expectation fails.

    A rule a filter item waives (filter.items.<item>.rules) is not checked for that item's lang, and is reported."""
    from mmm.validation import runner, waivers

    params_ = config.load(params)
    cfg = params_.validation
    if write_suites:
        for path in runner.write_suites(cfg.gx_dir):
            typer.echo(f"wrote {path}")
        return
    report = runner.run(cfg, params_.split.leakage, waivers.from_filter(params_.filter.items))
    typer.echo(report.describe())
    if not report.success:
        raise runner.GateFailed(f"validation failed: see {cfg.reports}/results.json and {cfg.data_docs}")


def split(
    input_path: Path | None = typer.Argument(None, metavar="[MMM.jsonl]", help="the mixed MMM dataset (default: split.input)"),
    train: Path | None = typer.Option(None, help="training records (default: split.train)"),
    test: Path | None = typer.Option(None, help="test records (default: split.test)"),
    fit: Path | None = typer.Option(None, help="train minus dev (default: split.fit, or fit.jsonl beside --train)"),
    dev: Path | None = typer.Option(None, help="the dev rows carved from train (default: split.dev, or dev.jsonl beside --train)"),
    metrics: Path | None = typer.Option(None, help="the counts, JSON (default: split.metrics)"),
    params: Path = PARAMS,
) -> None:
    """Split per language and sub-dataset: de-duplicate by text (NFKC, whitespace ignored), seeded train of the size in params
    (its last split.dev_size rows per cell: dev, the rest: fit), rest test."""
    from mmm.split import run

    if train is not None:
        fit = fit or train.with_name("fit.jsonl")
        dev = dev or train.with_name("dev.jsonl")
    cfg = config.load(params).split.with_flags(input=input_path, train=train, test=test, fit=fit, dev=dev, metrics=metrics)
    result = run(cfg)
    typer.echo(f"split: {result['rows']} rows, {result['duplicates']} duplicates -> {result['train']} train "
               f"({result['fit']} fit + {result['dev']} dev), {result['test']} test "
               f"({result['cells_without_test']} cells without test)")


def funnel(
    out: Path | None = typer.Option(None, help="rows per stage and language, JSON plot data (default: funnel.out)"),
    params: Path = PARAMS,
) -> None:
    """Rows per stage and language (ingested to train/test), from the metrics files the stages wrote."""
    from mmm.funnel import run

    params_ = config.load(params)
    cfg = params_.funnel.with_flags(out=out)
    table = run(params_, cfg.out)
    by_lang: dict[str, dict[str, int]] = {}
    for row in table:
        by_lang.setdefault(row["lang"], {})[row["stage"]] = row["rows"]
    langs = "; ".join(f"{lang} {c['ingested']} ingested, {c['released']} released, {c['train']} train, {c['test']} test"
                      for lang, c in by_lang.items())
    typer.echo(f"funnel: {langs} -> {cfg.out}")


def release_data(
    out_dir: Path | None = typer.Option(None, help="the release folder: README.md and <config>/<split>.parquet "
                                        "(default: release_data.out_dir)"),
    metrics: Path | None = typer.Option(None, help="rows per configuration and split, JSON (default: release_data.metrics)"),
    params: Path = PARAMS,
) -> None:
    """Release the validated split for Hugging Face: Parquet per configuration and split, and a dataset card."""
    from mmm.release import run

    params_ = config.load(params)
    cfg = params_.release_data.with_flags(out_dir=out_dir, metrics=metrics)
    result = run(params_, cfg)
    typer.echo(f"release-data: {result['configs']} configurations, {result['rows']['train']} train and "
               f"{result['rows']['test']} test rows -> {cfg.out_dir}")
