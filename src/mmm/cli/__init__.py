"""``mmm``: one subcommand per pipeline stage, in pipeline order, plus project tools.

Every subcommand does the same three things: load the typed params (``--params``, default
``./params.yaml``), apply its flags, call one library function. Errors are printed by
the one handler (``_HandledGroup.invoke``): one ``error:`` line per problem, no traceback, and the
exit codes of :mod:`mmm.errors` (0 done, 1 failed, 2 usage, 75 incomplete, 130 Ctrl-C, 143 SIGTERM).
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from mmm import __version__, errors, offline, publish
from mmm.cli import data, model, project


def _print_error(lines: Sequence[str], prefix: str = "error") -> None:
    for line in lines:
        typer.echo(f"{prefix}: {line}", err=True)


PIPELINE_ORDER = ("ingest", "tconer", "label-map", "translate", "review", "filter", "check", "assemble", "validate", "split",
                  "funnel", "release-data", "convert-base", "train", "predict", "evaluate", "release-model", "extract", "params", "profile")


class _HandledGroup(TyperGroup):
    """The one error handler: a user-fixable error becomes ``error:`` lines and its exit code, no traceback.

    It also lists the subcommands in pipeline order in ``--help`` (typer puts command groups last).
    """

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: i for i, name in enumerate(PIPELINE_ORDER)}
        return sorted(names, key=lambda name: rank.get(name, len(rank)))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except errors.MMMError as exc:
            _print_error(exc.lines(), "incomplete" if isinstance(exc, errors.IncompleteRun) else "error")
            code = exc.exit_code
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
            _print_error([f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)])
            code = errors.EXIT_FAILED
        except KeyboardInterrupt:
            _print_error(["interrupted (Ctrl-C)"])
            code = errors.EXIT_INTERRUPTED
        except errors.Terminated:
            _print_error(["terminated (SIGTERM)"])
            code = errors.EXIT_TERMINATED
        raise typer.Exit(code)


app = typer.Typer(cls=_HandledGroup, help="Rebuild the MMM datasets and the OIELLM model.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mmm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version and exit"),
) -> None:
    """Rebuild the MMM datasets and the OIELLM model (stage by stage; `dvc repro` runs them all)."""


data.register(app)
model.register(app)
project.register(app)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise errors.Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (usage errors are click's: 2)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpx2", "openai", "great_expectations"):  # HTTP request lines, GX import chatter
        logging.getLogger(noisy).setLevel(logging.WARNING)
    offline.enforce()
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        app(args=list(argv) if argv is not None else None, prog_name="mmm")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else errors.EXIT_FAILED if exc.code else errors.EXIT_OK
    finally:
        signal.signal(signal.SIGTERM, previous)
    return errors.EXIT_OK


def run(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``mmm``): run and exit with the command's code."""
    code = main(argv)
    if publish.abandoned():  # a worker thread may still be inside native code: do not wait for it
        publish.exit_now(code)
    sys.exit(code)
