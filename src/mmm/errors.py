"""The one error path: what a user can fix is an ``MMMError``; the CLI prints it, one line per problem.

Exit codes (README, "Exit codes") are part of the contract with DVC and shell scripts:

* ``0`` done;
* ``1`` bad input, bad params, a missing file or model, or a failed check (``EXIT_FAILED``);
* ``2`` usage: an unknown flag or a missing argument (``EXIT_USAGE``, click's own code);
* ``75`` incomplete but resumable: a budget was reached or Batch API results are pending
  (``EXIT_INCOMPLETE``, ``EX_TEMPFAIL``), so ``dvc repro`` stops without locking a partial output
  and a rerun continues;
* ``130`` interrupted by Ctrl-C (``KeyboardInterrupt``), ``143`` by SIGTERM (``Terminated``): ``128 + signal``.
"""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 75
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(Exception):
    """SIGTERM arrived: raised by the CLI's signal handler (so ``finally`` blocks and cleanups run), or
    by the LLM layer once the requests in flight are drained; the CLI exits ``EXIT_TERMINATED``."""


class MMMError(Exception):
    """A problem the user can fix; ``problems`` holds one line each (``file:line: what`` when known)."""

    exit_code = EXIT_FAILED

    max_listed = 50  # problems printed; the rest are counted

    def __init__(self, *problems: object) -> None:
        self.problems: list = list(problems) or ["failed"]
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """The problems as printed, each on a single line, at most ``max_listed`` of them."""
        shown = [" ".join(str(p).split()) for p in self.problems[: self.max_listed]]
        more = len(self.problems) - self.max_listed
        return shown + ([f"... and {more} more"] if more > 0 else [])


class ParamsError(MMMError, ValueError):
    """``params.yaml`` (or a profile) does not validate; one problem per bad key."""

    @classmethod
    def from_problems(cls, source: str, problems: Iterable[tuple[str, str]]) -> "ParamsError":
        """``problems``: ``(dotted key, what is wrong)`` pairs found in ``source``."""
        return cls(*(f"{source}: {key}: {what}" if key else f"{source}: {what}" for key, what in problems))


class DataError(MMMError, ValueError):
    """The input data breaks a rule of the stage as a whole (not a single row's format)."""


class MissingPathError(MMMError, FileNotFoundError):
    """A file or folder the command reads does not exist, or is a folder where a file is needed."""


class IncompleteRun(MMMError):
    """The run stopped early on purpose (budget, pending batches); a rerun continues where it stopped."""

    exit_code = EXIT_INCOMPLETE


def require_file(path: object, what: str = "input file") -> None:
    """Raise ``MissingPathError`` unless ``path`` is an existing regular file."""
    from pathlib import Path

    target = Path(str(path))
    if target.is_dir():
        raise MissingPathError(f"{target}: is a directory, expected {what}")
    if not target.is_file():
        raise MissingPathError(f"{target}: no such file ({what})")
