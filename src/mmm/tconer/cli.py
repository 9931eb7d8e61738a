"""``mmm tconer ...``: convert, label, review and apply-review."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mmm import params as params_mod

app = typer.Typer(help="Build TCONER: Pile-NER-type -> open-domain NER + text label, with human review.", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.command()
def convert(
    params: Path = typer.Option(Path("params.yaml")),
    out: Path = typer.Option(Path("data/interim/tconer/converted.jsonl")),
    metrics: Path = typer.Option(Path("metrics/tconer_convert.json")),
) -> None:
    """Pile-NER-type conversations -> one record per distinct text with its (type, entity) pairs."""
    from mmm.io import InputError
    from mmm.tconer.run import load_source, run_convert

    data = params_mod.load(params)
    cfg = data["tconer"]
    try:
        records = load_source(cfg.get("source_files", []), cfg.get("hub_id"), cfg.get("hub_split", "train"),
                              bool(data.get("hub", {}).get("allow_network", False)))
        result = run_convert(records, out, metrics, cfg.get("max_texts"), int(cfg.get("seed", 0)))
    except (InputError, FileNotFoundError) as exc:
        _fail(str(exc))
    typer.echo(f"tconer convert: {result['records']} records -> {result['texts_written']} texts, "
               f"{result['pairs_kept']} pairs, problems {result['problems']}")


@app.command()
def label(
    params: Path = typer.Option(Path("params.yaml")),
    converted: Path = typer.Option(Path("data/interim/tconer/converted.jsonl")),
    out: Path = typer.Option(Path("data/interim/tconer/en.jsonl")),
    failed: Path = typer.Option(Path("data/interim/tconer/label_failed.jsonl")),
    metrics: Path = typer.Option(Path("metrics/tconer_label.json")),
    backend: Optional[str] = typer.Option(None, help="openai | local | replay (overrides params llm.backend)"),
    model: Optional[str] = typer.Option(None),
    base_url: Optional[str] = typer.Option(None),
    cache_dir: Optional[str] = typer.Option(None),
) -> None:
    """Give every text an open-domain topic label with the LLM, then apply the human overrides."""
    from mmm.errors import IncompleteRun
    from mmm.io import InputError
    from mmm.llm import LLMConfig, LLMConfigError
    from mmm.tconer.label import LabelRules
    from mmm.tconer.run import run_label

    data = params_mod.load(params)
    cfg = data["tconer"]
    lab = cfg.get("label", {})
    try:
        llm = LLMConfig.from_params(data.get("llm"), backend=backend, model=model, base_url=base_url, cache_dir=cache_dir)
        result = run_label(converted, out, failed, metrics, llm, lab.get("template", "prompts/tconer/label.txt"),
                           cfg.get("overrides", "data/tconer/overrides.yaml"),
                           LabelRules(int(lab.get("max_words", 4)), int(lab.get("max_chars", 40))),
                           int(lab.get("max_tokens", 8)), log_dir=Path("logs"))
    except IncompleteRun as exc:  # budget reached or batches pending: exit 75 so DVC locks nothing; a rerun continues
        for line in exc.lines():
            typer.echo(f"incomplete: {line}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except (InputError, LLMConfigError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"tconer label: {result['input_rows']} texts -> {result['labelled']} labelled, {result['failed']} failed "
               f"{result['failures']}, {result['human_changed_labels']} labels changed by reviewers")


@app.command()
def review(
    records: Path = typer.Option(Path("data/interim/tconer/en.jsonl")),
    failed: Path = typer.Option(Path("data/interim/tconer/label_failed.jsonl")),
    out: Path = typer.Option(Path("reports/tconer_review.csv"), help="the sheet for reviewers (CSV)"),
) -> None:
    """Export labelled and failed TCONER records as a CSV sheet for reviewers."""
    from mmm.io import read_rows
    from mmm.tconer.review import sheet_rows, write_sheet

    rows = sheet_rows(read_rows(records, dict), read_rows(failed, dict) if failed.exists() else [])
    write_sheet(out, rows)
    typer.echo(f"review sheet: {len(rows)} rows -> {out} (fill new_label or drop, then `mmm tconer apply-review {out}`)")


@app.command("apply-review")
def apply_review(
    sheet: Path = typer.Argument(..., help="a review sheet with new_label/drop cells filled"),
    overrides: Path = typer.Option(Path("data/tconer/overrides.yaml")),
) -> None:
    """Merge a filled review sheet into the versioned overrides file."""
    from mmm.io import InputError
    from mmm.tconer.review import apply_sheet

    try:
        changes = apply_sheet(sheet, overrides)
    except InputError as exc:
        _fail(str(exc))
    typer.echo(f"overrides: {changes['relabelled']} relabelled, {changes['dropped']} dropped -> {overrides}")
