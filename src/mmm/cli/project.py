"""Project tools: check the params, switch to a profile (e.g. the paper's)."""

from __future__ import annotations

from pathlib import Path

import typer

from mmm import config
from mmm.cli.common import PARAMS

PANEL = "3. Project"

params_app = typer.Typer(help="Check params.yaml against the typed configuration.", no_args_is_help=True)
profile_app = typer.Typer(help="Switch params.yaml to another configuration (e.g. the paper's) in one command.",
                          no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(params_app, name="params", rich_help_panel=PANEL)
    app.add_typer(profile_app, name="profile", rich_help_panel=PANEL)


@params_app.command("check")
def params_check(params: Path = PARAMS) -> None:
    """Validate every section; list every problem (file: dotted.key: what), exit 1 if there is any.

    Paths the params read that neither exist nor are written by a stage are listed as notes.
    """
    loaded = config.load(params)
    for note in config.missing_inputs(loaded):
        typer.echo(f"note: {note}")
    typer.echo(f"{params}: ok ({len(type(loaded).model_fields)} sections)")


@profile_app.command("apply")
def profile_apply(
    profile: Path = typer.Argument(..., metavar="PROFILE.yaml", help="a partial params file, e.g. params/paper.yaml"),
    params: Path = typer.Option(Path(config.PARAMS_FILE), help="the params file to update (comments and layout are kept)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list the changes, write nothing"),
) -> None:
    """Deep-merge PROFILE into params.yaml: unknown keys are refused, the result must validate, every change is listed."""
    from mmm.profile import apply

    result = apply(profile, params, dry_run=dry_run)
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
