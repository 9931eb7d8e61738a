"""What every subcommand shares: the ``--params`` option and picking a ``foreach`` item."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, get_args

import typer
from pydantic import ValidationError

from mmm import config, publish
from mmm.errors import ParamsError

S = TypeVar("S", bound=config.Section)

PARAMS = typer.Option(Path(config.PARAMS_FILE), "--params", help="the params file (its paths are relative to its folder)")
ITEM_HELP = "use this item of the section's params (input and outputs); flags override it"


def item_config(items: dict[str, S], kind: type[S], section: str, item: str | None, **flags: Any) -> S:
    """``section.items.<item>`` with the flags over it, or, without ``--item``, a config of the flags alone."""
    if item is not None:
        if item not in items:
            raise ParamsError(f"{section}.items has no {item!r} (items: {', '.join(items) or 'none'})")
        return items[item].with_flags(**flags)  # type: ignore[return-value]
    given = {key: value for key, value in flags.items() if value is not None}
    optional = {name for name, info in kind.model_fields.items() if type(None) in get_args(info.annotation)}
    try:
        return kind.model_validate({**dict.fromkeys(optional), **given})
    except ValidationError as exc:
        missing = [f"--{'.'.join(map(str, e['loc'])).replace('_', '-')}" for e in exc.errors() if e["type"] == "missing"]
        if missing:
            raise ParamsError(f"{', '.join(missing)} required without --item (items in {section}: {', '.join(items)})") from None
        raise ParamsError.from_problems("command line", config.problems_of(exc, "")) from None


def interruptible(command: Callable[..., None]) -> Callable[..., None]:
    """Run ``command`` in a worker thread so Ctrl-C/SIGTERM stop it at once, even inside polars.

    For commands whose work is all local computation: on an interrupt the output set's temporaries
    are removed, the previous outputs stay, and the process exits 130/143 without waiting.
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        publish.run_interruptible(lambda: command(*args, **kwargs))

    return run
