"""Ctrl-C and SIGTERM on the real `mmm` process: exit 130/143, outputs all old or all new, no temporaries.

The command under test is held inside its main computation (a patched function that waits, as a
long polars call would), so the signal always arrives mid-run; nothing here measures time (the
benchmark ``benchmarks/bench_interrupt.py`` does).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROWS = [
    {"id": f"r{n}", "lang": "en", "dataset": "SCNM", "input": f"Tokyo Station {n} is busy./NER",
     "output": "Society/NER/:Facility;Tokyo Station", "prediction": "Society/NER/:Facility;Tokyo Station"}
    for n in range(40)
]

HOLD = """
import pathlib, sys, time
import {module} as target
original = target.{function}
def held(*args, **kwargs):
    pathlib.Path({marker!r}).write_text("started")
    time.sleep(120)
    return original(*args, **kwargs)
target.{function} = held
"""

SIGNAL_DURING_COMMIT = """
import os, signal
real_replace = os.replace
def replace_then_signal(src, dst):
    real_replace(src, dst)
    if not os.path.basename(dst).startswith(".") and not os.environ.get("SIGNALLED"):  # the first published output
        os.environ["SIGNALLED"] = "1"
        os.kill(os.getpid(), signal.{signal})
os.replace = replace_then_signal
"""

RUN = "\nfrom mmm.cli import run\nrun(sys.argv[1:])\n"


def _command(name: str, folder: Path, root: Path) -> tuple[list[str], list[Path], tuple[str, str]]:
    """The CLI arguments, the outputs, and the function that does the command's main work."""
    if name == "filter":
        outs = [folder / "kept.jsonl", folder / "rejected.jsonl", folder / "filter.json"]
        args = ["filter", str(folder / "in.jsonl"), "--lang", "en", "--kept", str(outs[0]), "--rejected", str(outs[1]),
                "--metrics", str(outs[2]), "--params", str(root / "params.yaml")]
        return args, outs, ("mmm.filters", "with_reasons")
    outs = [folder / "evaluate.json", folder / "table1.md", folder / "f1.png", folder / "f1"]
    args = ["evaluate", str(folder / "in.jsonl"), "--out", str(outs[0]), "--report", str(outs[1]), "--plot", str(outs[2]),
            "--plot-data", str(outs[3]), "--params", str(root / "params.yaml")]
    return args, outs, ("mmm.evaluation.run", "evaluate")


def _write_input(folder: Path, rows: list[dict]) -> None:
    (folder / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (a folder output's files too) by relative path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _python(prelude: str, args: list[str], cwd: Path) -> subprocess.Popen:
    import mmm

    source = str(Path(mmm.__file__).resolve().parents[1])  # the mmm under test, whatever the editable install points at
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": source}
    return subprocess.Popen([sys.executable, "-c", "import sys\n" + prelude + RUN, *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=60)  # the held function sleeps 120 s: returning at all means it was not awaited
    return proc.returncode, err


@pytest.fixture(params=["filter", "evaluate"])
def built(request, tmp_path, root):
    """A folder where the command already ran once: its outputs are the 'previous outputs'."""
    _write_input(tmp_path, ROWS)
    args, outs, hold = _command(request.param, tmp_path, root)
    code, err = _finish(_python("", args, tmp_path))
    assert code == 0, err
    return tmp_path, args, outs, hold


@pytest.mark.parametrize("signum, code, message", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_a_signal_mid_run_stops_at_once_and_keeps_the_previous_outputs(built, signum, code, message):
    folder, args, outs, (module, function) = built
    _write_input(folder, ROWS[:10])  # a new input: its outputs would differ
    before = _snapshot(folder)
    marker = folder.parent / f"{folder.name}.started"
    proc = _python(HOLD.format(module=module, function=function, marker=str(marker)), args, folder)
    for _ in range(600):
        if marker.exists() or proc.poll() is not None:
            break
        time.sleep(0.1)
    assert marker.exists(), proc.communicate()[1]
    proc.send_signal(signum)
    returncode, err = _finish(proc)
    assert returncode == code
    assert f"error: {message}" in err and "Traceback" not in err
    assert _snapshot(folder) == before  # every previous output byte-identical, no temporary left


@pytest.mark.parametrize("signame, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_between_renames_still_publishes_the_whole_new_set(built, tmp_path_factory, root, signame, code):
    folder, args, outs, _ = built
    _write_input(folder, ROWS[:10])
    clean = tmp_path_factory.mktemp("clean")
    _write_input(clean, ROWS[:10])
    clean_args, clean_outs, _ = _command(args[0], clean, root)
    assert _finish(_python("", clean_args, clean))[0] == 0
    returncode, err = _finish(_python(SIGNAL_DURING_COMMIT.format(signal=signame), args, folder))
    assert returncode == code, err
    for new, expected in zip(outs, clean_outs):
        if new.is_dir():  # a folder output: the same files, the same text
            assert _snapshot(new) == _snapshot(expected)
        elif new.suffix != ".png":  # the chart embeds nothing run-specific, but PNG bytes are not compared here
            assert new.read_text().replace(str(folder), "") == expected.read_text().replace(str(clean), "")
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_colliding_outputs_exit_2_before_reading_and_touch_nothing(tmp_path, root):
    _write_input(tmp_path, ROWS)
    before = _snapshot(tmp_path)
    for kept, rejected in [("out.jsonl", "out.jsonl"), ("in.jsonl", "rejected.jsonl")]:
        args = ["filter", "in.jsonl", "--lang", "en", "--kept", kept, "--rejected", rejected, "--params", str(root / "params.yaml")]
        returncode, err = _finish(_python("", args, tmp_path))
        assert returncode == 2
        assert "is the same file as output 'kept'" in err and "nothing was read or written" in err
        assert _snapshot(tmp_path) == before
