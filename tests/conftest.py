from __future__ import annotations

import signal
from pathlib import Path

import pytest

# LLM fixtures (fake_openai server, openai_env, openai_config): see tests/fixtures_llm.py;
# S3-compatible DVC remotes (s3_server, s3_bucket): see tests/fixtures_s3.py
pytest_plugins = ["fixtures_llm", "fixtures_s3"]

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "data" / "raw" / "sample"
# Real third-party data (research-only licence): read in place, never copied.
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR


# The repository's own data, models and results must come out of a test run untouched: tests write
# under tmp_path. A run that changed any of these fails, naming what changed.
WATCHED = ("data", "metrics", "models", "reports", "gx", "params.yaml", "params", "dvc.yaml", "dvc.lock")


def _snapshot() -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for name in WATCHED:
        base = ROOT / name
        paths = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file()] if base.is_dir() else []
        for path in paths:
            stat = path.stat()
            found[path.relative_to(ROOT).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return found


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config._repository_files = _snapshot()  # type: ignore[attr-defined]
    # A shell that starts `make test` as a background job (`cmd &` without job control) hands it SIGINT ignored,
    # and Python then installs no KeyboardInterrupt handler; the Ctrl-C tests (here and in the commands they
    # start, which inherit the disposition) need SIGINT as a terminal delivers it.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = getattr(session.config, "_repository_files", None)
    if before is None or hasattr(session.config, "workerinput"):
        return
    after = _snapshot()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed:
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"the test run changed repository files: {shown}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
