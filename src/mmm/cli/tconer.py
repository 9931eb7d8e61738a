"""``mmm tconer ...``: convert, label, review and apply-review."""

from __future__ import annotations

from pathlib import Path

import typer

from mmm import config
from mmm.cli.choices import Backend, value
from mmm.cli.common import PARAMS, interruptible

app = typer.Typer(help="Build TCONER: Pile-NER-type -> open-domain NER + text label, with human review.",
                  no_args_is_help=True)


@app.command("convert")
@interruptible
def convert(
    out: Path | None = typer.Option(None, help="one record per distinct text (default: tconer.converted)"),
    params: Path = PARAMS,
) -> None:
    """Pile-NER-type conversations -> one record per distinct text with its (type, entity) pairs."""
    from mmm.tconer.run import load_source, run_convert

    cfg = config.load(params)
    tconer = cfg.tconer.with_flags(converted=out)
    records, origins = load_source(tconer.source_files, tconer.hub_id, tconer.hub_split, cfg.hub.allow_network,
                                   tconer.hub_revision)
    result = run_convert(records, tconer.converted, tconer.convert_metrics, tconer.max_texts, tconer.seed, origins)
    typer.echo(f"tconer convert: {result['records']} records -> {result['texts_written']} texts, "
               f"{result['pairs_kept']} pairs, problems {result['problems']}")


@app.command()
def label(
    converted: Path | None = typer.Argument(None, metavar="[CONVERTED.jsonl]", help="default: tconer.converted"),
    out: Path | None = typer.Option(None, help="labelled records (default: tconer.labelled)"),
    failed: Path | None = typer.Option(None, help="texts without a usable label (default: tconer.label_failed)"),
    backend: Backend | None = typer.Option(None, help="LLM backend (default: llm.backend)"),
    model: str | None = typer.Option(None, help="model name served by the API (default: llm.model)"),
    model_dir: Path | None = typer.Option(None, help="local model folder (default: llm.local_model_dir)"),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible endpoint (default: llm.base_url)"),
    cache_dir: Path | None = typer.Option(None, help="LLM answer cache folder (default: llm.cache_dir)"),
    params: Path = PARAMS,
) -> None:
    """Give every text an open-domain topic label with the LLM, then apply the human overrides."""
    from mmm.tconer.label import LabelRules
    from mmm.tconer.run import run_label

    cfg = config.load(params)
    tconer = cfg.tconer.with_flags(converted=converted, labelled=out, label_failed=failed)
    llm = cfg.llm.with_flags(backend=value(backend), model=model, local_model_dir=model_dir, base_url=base_url,
                             cache_dir=cache_dir)
    rules = LabelRules(tconer.label.max_words, tconer.label.max_chars)
    result = run_label(tconer.converted, tconer.labelled, tconer.label_failed, tconer.label_metrics, llm,
                       tconer.label.template, tconer.overrides, rules, tconer.label.max_tokens, log_dir=cfg.logs.dir)
    typer.echo(f"tconer label: {result['input_rows']} texts -> {result['labelled']} labelled, {result['failed']} failed "
               f"{result['failures']}, {result['human_changed_labels']} labels changed by reviewers")


@app.command()
def review(
    out: Path | None = typer.Option(None, help="the sheet for reviewers, CSV (default: tconer.review_sheet)"),
    params: Path = PARAMS,
) -> None:
    """Export labelled and failed TCONER records as a CSV sheet for reviewers."""
    from mmm.tconer.review import export_sheet

    tconer = config.load(params).tconer.with_flags(review_sheet=out)
    rows = export_sheet(tconer.labelled, tconer.label_failed, tconer.review_sheet)
    typer.echo(f"review sheet: {rows} rows -> {tconer.review_sheet} "
               f"(fill new_label or drop, then `mmm tconer apply-review {tconer.review_sheet}`)")


@app.command("apply-review")
def apply_review(
    sheet: Path = typer.Argument(..., metavar="SHEET.csv", help="a review sheet with new_label/drop cells filled"),
    params: Path = PARAMS,
) -> None:
    """Merge a filled review sheet into the versioned overrides file (tconer.overrides)."""
    from mmm.tconer.label import LabelRules
    from mmm.tconer.review import apply_sheet

    tconer = config.load(params).tconer
    overrides = tconer.overrides
    changes = apply_sheet(sheet, overrides, LabelRules(tconer.label.max_words, tconer.label.max_chars))
    typer.echo(f"overrides: {changes['relabelled']} relabelled, {changes['dropped']} dropped -> {overrides}")
