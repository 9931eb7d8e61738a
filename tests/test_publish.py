"""Output sets: collisions refused before anything runs, all-or-nothing replacement, umask, held signals."""

from __future__ import annotations

import os
import signal
import stat
import threading
import time

import pytest

from mmm import publish


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_set_replaces_every_target_when_the_block_ends(tmp_path):
    (tmp_path / "a.txt").write_text("old a")
    (tmp_path / "b.txt").write_text("old b")
    with publish.outputs({"a": tmp_path / "a.txt", "b": tmp_path / "b.txt"}) as out:
        out["a"].write_text("new a")
        out["b"].write_text("new b")
        assert (tmp_path / "a.txt").read_text() == "old a"  # nothing is visible before the block ends
    assert (tmp_path / "a.txt").read_text() == "new a"
    assert (tmp_path / "b.txt").read_text() == "new b"
    assert _leftovers(tmp_path) == []


def test_an_error_in_the_block_keeps_every_old_output_and_removes_the_temporaries(tmp_path):
    (tmp_path / "a.txt").write_text("old a")
    with pytest.raises(RuntimeError, match="boom"):
        with publish.outputs({"a": tmp_path / "a.txt", "b": tmp_path / "b.txt"}) as out:
            out["a"].write_text("new a")
            out["b"].write_text("new b")
            raise RuntimeError("boom")
    assert (tmp_path / "a.txt").read_text() == "old a"
    assert not (tmp_path / "b.txt").exists()
    assert _leftovers(tmp_path) == []


def test_a_folder_output_is_replaced_whole(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "stale.bin").write_text("old weights")
    with publish.outputs({"model": model}, folders=["model"]) as out:
        assert out["model"].is_dir() and not any(out["model"].iterdir())
        (out["model"] / "config.json").write_text("{}")
    assert sorted(p.name for p in model.iterdir()) == ["config.json"]
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_follow_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        with publish.outputs({"f": tmp_path / "f.txt", "d": tmp_path / "d"}, folders=["d"]) as out:
            out["f"].write_text("x")
            out["d"]
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == mode | 0o111 & ~umask


def test_colliding_outputs_are_refused_before_the_block_runs(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("keep me\n")
    (tmp_path / "link.jsonl").symlink_to(source)
    os.link(source, tmp_path / "hard.jsonl")
    cases = [
        ({"kept": tmp_path / "x.jsonl", "rejected": tmp_path / "x.jsonl"}, [], "output 'rejected' is the same file as output 'kept'"),
        ({"kept": tmp_path / "sub" / ".." / "x.jsonl", "rejected": tmp_path / "x.jsonl"}, [], "same file"),
        ({"kept": source}, [source], "input is the same file as output 'kept'"),
        ({"kept": tmp_path / "link.jsonl"}, [source], "input is the same file as output 'kept'"),
        ({"kept": tmp_path / "hard.jsonl"}, [source], "input is the same file as output 'kept'"),
    ]
    for targets, inputs, message in cases:
        ran = False
        with pytest.raises(publish.OutputCollision, match=message) as caught:
            with publish.outputs(targets, inputs=inputs):
                ran = True
        assert caught.value.exit_code == 2
        assert not ran
    assert source.read_text() == "keep me\n"


def test_an_input_inside_an_output_folder_is_refused(tmp_path):
    with pytest.raises(publish.OutputCollision, match="lies inside output folder 'model'"):
        publish.check_distinct({"model": tmp_path / "m"}, [tmp_path / "m" / "train.jsonl"], folders=["model"])
    publish.check_distinct({"model": tmp_path / "m"}, [tmp_path / "m2.jsonl"], folders=["model"])  # a prefix is not inside


def test_held_signals_deliver_sigint_after_the_block(tmp_path):
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with publish.held_signals():
            signal.raise_signal(signal.SIGINT)
            finished.append("renames done")
    assert finished == ["renames done"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_interrupt_abandons_a_worker_stuck_in_a_long_call(tmp_path, monkeypatch):
    """The main thread stops at once and removes the worker's temporaries; the worker publishes nothing."""
    monkeypatch.setattr(publish, "_abandoned", threading.Event())
    target = tmp_path / "out.txt"
    target.write_text("old")
    release = threading.Event()
    created = threading.Event()

    def work():
        with publish.outputs({"out": target}) as out:
            out["out"].write_text("new")
            created.set()
            release.wait(30)  # a long native call (polars) in the real command

    def interrupt():
        created.wait(30)
        signal.raise_signal(signal.SIGINT)  # handled by the main thread, blocked in join()

    threading.Thread(target=interrupt).start()
    with pytest.raises(KeyboardInterrupt):
        publish.run_interruptible(work)
    assert publish.abandoned()
    assert _leftovers(tmp_path) == []  # removed by the main thread while the worker still waits
    release.set()
    time.sleep(0.2)  # the worker wakes, tries to publish and is refused
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_errors_in_the_worker_reach_the_caller(monkeypatch):
    monkeypatch.setattr(publish, "_abandoned", threading.Event())

    def fail():
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        publish.run_interruptible(fail)
    assert publish.run_interruptible(lambda: 42) == 42
