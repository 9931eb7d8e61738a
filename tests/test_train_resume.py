"""Training checkpoints and resume: a stopped run continues from its newest matching checkpoint and
publishes the same bytes as a run that was never stopped."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_model import one_torch_thread, sample_records, tiny_model_dir  # noqa: F401

from configs import make, write_params
from mmm.modeling import checkpoints
from mmm.train import Paths, train


REAL_SAVE = checkpoints.save


class Stop(Exception):
    """Stands in for a kill right after a checkpoint was written."""


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    from accelerate.state import AcceleratorState, GradientState

    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def reset_accelerate() -> None:
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def paths_in(folder: Path, train_file: Path) -> Paths:
    return Paths(train_file, folder / "model", folder / "train.json", folder / "loss.csv", folder / "loss.png")


def published(paths: Paths) -> dict[str, bytes]:
    files = {f"model/{p.name}": p.read_bytes() for p in sorted(paths.out_dir.iterdir())}
    return files | {p.name: p.read_bytes() for p in (paths.metrics, paths.curve, paths.plot)}


def config(base: Path, folder: Path, **changes):
    # LoRA with dropout draws random numbers every step: resuming must restore the RNG too
    settings = dict(gate=None, base_model=str(base), method="lora", epochs=3, max_steps=8, learning_rate=1e-2,
                    per_device_batch_size=2, gradient_accumulation_steps=2, save_dtype="float32", threads=1,
                    checkpoints=str(folder), checkpoint_every=2, resume="auto")
    return make("train", **(settings | changes))


def on_disk(folder: Path) -> list[str]:
    """The checkpoint folders, fingerprint suffix cut off (step-00000004)."""
    return sorted(p.name[:13] if p.name.startswith("step-") else p.name for p in folder.iterdir())


def named(folder: Path, step: int) -> Path:
    """The one checkpoint folder of ``step``."""
    (path,) = folder.glob(f"step-{step:08d}-*")
    return path


def saved_steps(monkeypatch, stop_after: int | None = None) -> list[int]:
    """Record the steps checkpointed from now on; raise ``Stop`` once ``stop_after`` is written."""
    steps: list[int] = []

    def recording(accelerator, folder, step, state, current, keep=checkpoints.KEEP):
        path = REAL_SAVE(accelerator, folder, step, state, current, keep)
        steps.append(step)
        if step == stop_after:
            raise Stop(step)
        return path

    monkeypatch.setattr(checkpoints, "save", recording)
    return steps


@pytest.fixture
def uninterrupted(tmp_path, tiny_model_dir):  # noqa: F811
    train_file = write_rows(tmp_path / "train.jsonl", sample_records()[:12])
    paths = paths_in(tmp_path / "a", train_file)
    train(config(tiny_model_dir, tmp_path / "a-checkpoints"), paths)
    reset_accelerate()
    assert not list((tmp_path / "a-checkpoints").iterdir())  # removed once the model was published
    return train_file, published(paths)


def test_a_stopped_run_resumes_and_publishes_the_same_bytes(tmp_path, tiny_model_dir, uninterrupted, monkeypatch,  # noqa: F811
                                                            caplog):
    train_file, expected = uninterrupted
    folder, paths = tmp_path / "b-checkpoints", paths_in(tmp_path / "b", train_file)
    steps = saved_steps(monkeypatch, stop_after=4)
    with pytest.raises(Stop):
        train(config(tiny_model_dir, folder), paths)
    reset_accelerate()
    assert steps == [2, 4] and on_disk(folder) == ["step-00000002", "step-00000004"]
    assert not paths.out_dir.exists()

    resumed_from = named(folder, 4)
    with caplog.at_level(logging.INFO):
        train(config(tiny_model_dir, folder), paths)
    assert steps == [2, 4, 6]  # the rerun started after step 4
    assert f"resumed from {resumed_from} at step 4, batch 8" in caplog.text
    assert published(paths) == expected
    assert list(folder.iterdir()) == []


def test_a_checkpoint_of_other_params_or_data_is_never_resumed(tmp_path, tiny_model_dir, monkeypatch, caplog):  # noqa: F811
    train_file = write_rows(tmp_path / "train.jsonl", sample_records()[:12])
    folder, paths = tmp_path / "checkpoints", paths_in(tmp_path / "b", train_file)
    saved_steps(monkeypatch, stop_after=4)
    with pytest.raises(Stop):
        train(config(tiny_model_dir, folder), paths)
    reset_accelerate()
    first = named(folder, 4)

    steps = saved_steps(monkeypatch, stop_after=2)
    with caplog.at_level(logging.INFO), pytest.raises(Stop):
        train(config(tiny_model_dir, folder, learning_rate=2e-2), paths)
    reset_accelerate()
    assert steps == [2] and "resumed" not in caplog.text
    assert f"checkpoint {first} ignored: trained with other params.learning_rate" in caplog.text

    caplog.clear()
    write_rows(train_file, sample_records()[:11])
    steps = saved_steps(monkeypatch, stop_after=2)
    with caplog.at_level(logging.INFO), pytest.raises(Stop):
        train(config(tiny_model_dir, folder), paths)
    reset_accelerate()
    assert steps == [2] and "resumed" not in caplog.text
    assert f"checkpoint {first} ignored: trained with other train_sha256" in caplog.text
    # the two checkpoints of the first run stayed (another fingerprint is never removed), one per later run was added
    assert len(list(folder.iterdir())) == 4


def test_a_kill_mid_save_leaves_the_previous_checkpoint_usable(tmp_path, tiny_model_dir, uninterrupted, monkeypatch,  # noqa: F811
                                                               caplog):
    train_file, expected = uninterrupted
    folder, paths = tmp_path / "checkpoints", paths_in(tmp_path / "b", train_file)
    saved_steps(monkeypatch, stop_after=4)
    with pytest.raises(Stop):
        train(config(tiny_model_dir, folder), paths)
    reset_accelerate()
    # step 6 was being written when the process died: its temporary holds part of accelerate's files
    resumable = named(folder, 4)
    partial = folder / f".{resumable.name.replace('-00000004-', '-00000006-')}.tmp"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes((resumable / "model.safetensors").read_bytes()[:1000])
    broken = folder / resumable.name.replace("-00000004-", "-00000005-")  # damaged: no readable checkpoint.json
    broken.mkdir()
    (broken / checkpoints.STATE_FILE).write_text('{"format": 1, "st', encoding="utf-8")

    steps = saved_steps(monkeypatch)
    with caplog.at_level(logging.INFO):
        train(config(tiny_model_dir, folder), paths)
    assert steps == [6] and f"resumed from {resumable} at step 4" in caplog.text
    assert f"checkpoint {broken} ignored: unreadable checkpoint.json" in caplog.text
    assert published(paths) == expected
    assert on_disk(folder) == ["step-00000005"]  # unreadable: not removed, the log names it


def test_resume_never_starts_over_and_drops_the_runs_checkpoints(tmp_path, tiny_model_dir, uninterrupted, monkeypatch,  # noqa: F811
                                                                 caplog):
    train_file, expected = uninterrupted
    folder, paths = tmp_path / "checkpoints", paths_in(tmp_path / "b", train_file)
    saved_steps(monkeypatch, stop_after=6)
    with pytest.raises(Stop):
        train(config(tiny_model_dir, folder), paths)
    reset_accelerate()
    steps = saved_steps(monkeypatch, stop_after=2)
    with caplog.at_level(logging.INFO), pytest.raises(Stop):
        train(config(tiny_model_dir, folder, resume="never"), paths)
    reset_accelerate()
    assert "removed 2 checkpoint(s)" in caplog.text and "resumed" not in caplog.text
    assert steps == [2] and on_disk(folder) == ["step-00000002"]
    # auto again: continues the newer run, which was started over
    steps = saved_steps(monkeypatch)
    train(config(tiny_model_dir, folder), paths)
    assert steps == [4, 6] and published(paths) == expected


def test_checkpoint_settings_change_no_published_byte(tmp_path, tiny_model_dir, uninterrupted):  # noqa: F811
    train_file, expected = uninterrupted
    paths = paths_in(tmp_path / "plain", train_file)
    train(config(tiny_model_dir, tmp_path / "unused", checkpoint_every=None, resume="never"), paths)
    assert published(paths) == expected and not (tmp_path / "unused").exists()


@pytest.mark.parametrize("section, message", [
    ({"resume": "yes"}, "train.resume: Input should be 'auto' or 'never'"),
    ({"checkpoint_every": 0}, "train.checkpoint_every: Input should be greater than or equal to 1"),
    ({"checkpoint_every": "10"}, "train.checkpoint_every: Input should be a valid integer"),
    ({"checkpoints": None}, "train.checkpoints"),
])
def test_bad_checkpoint_params_are_named(section, message):
    with pytest.raises(ValueError, match=message):
        make("train", **section)
