"""``mmm review``: the human review of translated rows (export a sheet, merge it into the item's overrides)."""

from __future__ import annotations

from pathlib import Path

import typer

from mmm import config
from mmm.cli.common import ITEM_HELP, PARAMS
from mmm.errors import ParamsError

app = typer.Typer(help="Review translated rows: export a CSV sheet, merge the filled sheet into the overrides file.",
                  no_args_is_help=True)


def _item(params: Path, item: str) -> config.TranslateItem:
    items = config.load(params).translate.items
    if item not in items:
        raise ParamsError(f"translate.items has no {item!r} (items: {', '.join(items)})")
    job = items[item]
    if job.overrides is None or job.review_sheet is None:
        raise ParamsError(f"translate.items.{item}: set overrides and review_sheet to review it")
    return job


@app.command()
def export(item: str = typer.Option(..., help=ITEM_HELP + " (translate.items)"), params: Path = PARAMS) -> None:
    """Write the item's review sheet: every source row with its translation or why it failed."""
    from mmm.translate.review import export_sheet

    job = _item(params, item)
    rows = export_sheet(job.input, job.out, job.failed, job.review_sheet)
    typer.echo(f"review sheet: {rows} rows -> {job.review_sheet} (fill new_input + new_output, or drop; then "
               f"`mmm review apply {job.review_sheet} --item {item}`)")


@app.command()
def apply(
    sheet: Path = typer.Argument(..., metavar="SHEET.csv", help="a review sheet with new_input/new_output or drop filled"),
    item: str = typer.Option(..., help=ITEM_HELP + " (translate.items)"),
    params: Path = PARAMS,
) -> None:
    """Merge a filled sheet into the item's overrides file; the translate stage applies it on its next run."""
    from mmm.translate.review import apply_sheet

    job = _item(params, item)
    changes = apply_sheet(sheet, job.overrides)
    typer.echo(f"overrides: {changes['corrected']} corrected, {changes['dropped']} dropped -> {job.overrides}")
