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

import psutil
import pytest
from tiny_model import one_torch_thread, sample_records, tiny_model_dir  # noqa: F401

import mmm
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
    settings = {"gate": None, "base_model": str(base), "method": "lora", "epochs": 3, "max_steps": 8, "learning_rate": 1e-2,
                "per_device_batch_size": 2, "gradient_accumulation_steps": 2, "save_dtype": "float32", "threads": 1,
                "checkpoints": str(folder), "checkpoint_every": 2, "resume": "auto"}
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


def stopped(monkeypatch, cfg, paths: Paths, stop_after: int) -> list[int]:
    """Run training until the checkpoint of step ``stop_after`` is written, as a kill right after it would."""
    steps = saved_steps(monkeypatch, stop_after=stop_after)
    with pytest.raises(Stop):
        train(cfg, paths)
    reset_accelerate()
    return steps


def test_a_stopped_run_resumes_and_publishes_the_same_bytes(tmp_path, tiny_model_dir, uninterrupted, monkeypatch,  # noqa: F811
                                                            caplog):
    train_file, expected = uninterrupted
    folder, paths = tmp_path / "b-checkpoints", paths_in(tmp_path / "b", train_file)
    steps = stopped(monkeypatch, config(tiny_model_dir, folder), paths, stop_after=4)
    assert steps == [2, 4] and on_disk(folder) == ["step-00000002", "step-00000004"]
    assert not paths.out_dir.exists()

    resumed_from = named(folder, 4)
    with caplog.at_level(logging.INFO):
        result = train(config(tiny_model_dir, folder), paths)
    assert steps == [2, 4, 6]  # the rerun started after step 4
    assert result["telemetry"]["resumed_from_step"] == 4 and result["optimizer_steps"] == 8
    assert f"resumed from {resumed_from} at step 4, batch 8" in caplog.text
    assert published(paths) == expected
    assert list(folder.iterdir()) == []


def test_a_checkpoint_of_other_params_or_data_is_never_resumed(tmp_path, tiny_model_dir, monkeypatch, caplog):  # noqa: F811
    train_file = write_rows(tmp_path / "train.jsonl", sample_records()[:12])
    folder, paths = tmp_path / "checkpoints", paths_in(tmp_path / "b", train_file)
    stopped(monkeypatch, config(tiny_model_dir, folder), paths, stop_after=4)
    first = named(folder, 4)

    caplog.set_level(logging.INFO)
    steps = stopped(monkeypatch, config(tiny_model_dir, folder, learning_rate=2e-2), paths, stop_after=2)
    assert steps == [2] and "resumed" not in caplog.text
    assert f"checkpoint {first} ignored: trained with other params.learning_rate" in caplog.text

    caplog.clear()
    write_rows(train_file, sample_records()[:11])
    caplog.set_level(logging.INFO)
    steps = stopped(monkeypatch, config(tiny_model_dir, folder), paths, stop_after=2)
    assert steps == [2] and "resumed" not in caplog.text
    assert f"checkpoint {first} ignored: trained with other train_sha256" in caplog.text
    # the two checkpoints of the first run stayed (another fingerprint is never removed), one per later run was added
    assert len(list(folder.iterdir())) == 4


def test_a_kill_mid_save_leaves_the_previous_checkpoint_usable(tmp_path, tiny_model_dir, uninterrupted, monkeypatch,  # noqa: F811
                                                               caplog):
    train_file, expected = uninterrupted
    folder, paths = tmp_path / "checkpoints", paths_in(tmp_path / "b", train_file)
    stopped(monkeypatch, config(tiny_model_dir, folder), paths, stop_after=4)
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
    stopped(monkeypatch, config(tiny_model_dir, folder), paths, stop_after=6)
    caplog.set_level(logging.INFO)
    steps = stopped(monkeypatch, config(tiny_model_dir, folder, resume="never"), paths, stop_after=2)
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


def two_process_run(tmp_path: Path, base: Path, train_file: Path, name: str) -> tuple[subprocess.Popen, Paths]:
    """``mmm train`` in a real 2-process gloo world (torchrun), in its own process group."""
    folder = tmp_path / name
    folder.mkdir()
    paths = paths_in(folder, train_file)
    params = write_params(folder / "params.yaml", logs={"dir": str(folder / "logs")}, predict={"gate": None}, train={
        "gate": None, "base_model": str(base), "method": "lora", "epochs": 50, "max_steps": 30, "learning_rate": 1e-2,
        "per_device_batch_size": 2, "gradient_accumulation_steps": 2, "save_dtype": "float32", "threads": 1,
        "checkpoints": str(tmp_path / f"{name.rstrip('0123456789')}-checkpoints"), "checkpoint_every": 3,
        "resume": "auto", "metrics": str(paths.metrics), "curve": str(paths.curve), "plot": str(paths.plot)})
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "mmm.cli", "train", "--params", str(params),
               str(train_file), "--model-dir", str(paths.out_dir)]
    src = str(Path(mmm.__file__).parents[1])  # the mmm under test, whatever the working directory
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])}
    with open(folder / "output.txt", "w") as output:  # a file, not a pipe: a full pipe would stall the ranks
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return process, paths


def kill_tree(pid: int) -> None:
    """SIGKILL torchrun and its workers: it starts each worker in a session of its own, so killing
    its process group alone would leave the ranks running (and writing checkpoints)."""
    parent = psutil.Process(pid)
    for process in [parent, *parent.children(recursive=True)]:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def finish(process: subprocess.Popen, paths: Paths, timeout: int = 300) -> str:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(process.pid)
        process.wait()
        pytest.fail(f"training did not finish in {timeout} s")
    output = (paths.out_dir.parent / "output.txt").read_text()
    assert process.returncode == 0, output[-3000:]
    return output


@pytest.mark.slow
def test_two_processes_killed_after_a_checkpoint_resume_to_the_same_model(tmp_path, tiny_model_dir):  # noqa: F811
    """SIGKILL of torchrun and both ranks once a checkpoint exists; the rerun ends with A's bytes."""
    train_file = write_rows(tmp_path / "train.jsonl", sample_records()[:16])
    process, paths_a = two_process_run(tmp_path, tiny_model_dir, train_file, "a")
    finish(process, paths_a)
    expected = published(paths_a)
    assert json.loads(paths_a.metrics.read_text())["world_size"] == 2

    process, paths_b = two_process_run(tmp_path, tiny_model_dir, train_file, "b1")
    folder = tmp_path / "b-checkpoints"
    deadline = time.monotonic() + 240
    while not list(folder.glob("step-*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    workers = [p.pid for p in psutil.Process(process.pid).children(recursive=True)]
    kill_tree(process.pid)
    process.wait()
    time.sleep(0.5)
    assert len(workers) >= 2 and not [pid for pid in workers if psutil.pid_exists(pid)
                                      and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    output = (paths_b.out_dir.parent / "output.txt").read_text()
    assert process.returncode == -signal.SIGKILL, output[-3000:]
    killed_at = sorted(folder.glob("step-*"))
    assert killed_at and not paths_b.out_dir.exists(), output[-3000:]

    process, paths_b2 = two_process_run(tmp_path, tiny_model_dir, train_file, "b2")
    output = finish(process, paths_b2)
    step = int(killed_at[-1].name.split("-")[1])
    assert 0 < step < 30
    resumed = [line for line in output.splitlines() if "resumed from" in line]
    assert len(resumed) == 2 and all(f"at step {step}," in line for line in resumed), output[-3000:]  # both ranks
    assert published(paths_b2) == expected
    assert list(folder.iterdir()) == []
