"""``mmm``: one command with a subcommand per pipeline stage, for use outside DVC."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from mmm import params as params_mod
from mmm.io import InputError

app = typer.Typer(help="Rebuild the MMM datasets and the OIELLM model.", no_args_is_help=True, add_completion=False)


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
