"""hf prediction resumes: a run stopped after some chunks continues without generating them again, and
publishes the bytes of an uninterrupted run."""

from __future__ import annotations

import json

import pytest
from tiny_model import one_torch_thread, sample_records, tiny_model_dir  # noqa: F401

from configs import make
from mmm import predict


def reset() -> None:
    from accelerate.state import PartialState

    PartialState._reset_state()


@pytest.fixture
def setup(tmp_path, tiny_model_dir):  # noqa: F811
    rows = sample_records()[::40]  # 19 rows over several cells
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    cfg = make("predict", gate=None, model=str(tiny_model_dir), batch_size=2, max_new_tokens=6, chunk_rows=3,
               max_rows_per_cell=None, constrained="grammar", checkpoints=str(tmp_path / "checkpoints"))
    return cfg, test, rows


def interrupted(monkeypatch, cfg, test, out, at_chunk: int):
    """Run prediction into ``out`` with Ctrl-C arriving as chunk ``at_chunk`` starts; returns the real predict."""
    original = predict._HfWorld.predict
    calls: list[int] = []

    def stop(self, chunk):
        calls.append(len(chunk))
        if len(calls) == at_chunk:
            raise KeyboardInterrupt
        return original(self, chunk)

    monkeypatch.setattr(predict._HfWorld, "predict", stop)
    with pytest.raises(KeyboardInterrupt):
        predict.run(cfg, test, out, out.with_suffix(".json"))
    reset()
    assert not out.exists()
    return original


def outputs(tmp_path, name: str) -> list[bytes]:
    return [(tmp_path / f"{name}.{ext}").read_bytes() for ext in ("jsonl", "json")]


def test_a_stopped_run_resumes_without_regenerating_finished_chunks(tmp_path, setup, monkeypatch):
    cfg, test, rows = setup
    predict.run(cfg, test, tmp_path / "whole.jsonl", tmp_path / "whole.json")
    reset()
    assert not list((tmp_path / "checkpoints").iterdir())  # published: the partial is removed

    original = interrupted(monkeypatch, cfg, test, tmp_path / "resumed.jsonl", at_chunk=3)
    [partial] = (tmp_path / "checkpoints").glob("predict-*.jsonl")
    assert len(partial.read_text().splitlines()) == 1 + 2  # header + two finished chunks
    with open(partial, "ab") as fh:
        fh.write(b'{"chunk": 2, "rows": [')  # and a torn third, as a kill mid-write leaves it

    generated: list[str] = []
    generate = predict.Generator.generate

    def counting(self, inputs, *args, **kwargs):
        generated.extend(inputs)
        return generate(self, inputs, *args, **kwargs)

    monkeypatch.setattr(predict._HfWorld, "predict", original)
    monkeypatch.setattr(predict.Generator, "generate", counting)
    result = predict.run(cfg, test, tmp_path / "resumed.jsonl", tmp_path / "resumed.json", log_dir=tmp_path / "logs")
    reset()
    assert generated == [r["input"] for r in rows[6:]]  # the first two chunks (6 rows) are not generated again
    assert result["telemetry"]["resumed_chunks"] == 2
    assert outputs(tmp_path, "resumed") == outputs(tmp_path, "whole")
    assert not partial.exists()


def test_a_partial_of_other_params_is_not_resumed(tmp_path, setup, monkeypatch):
    cfg, test, rows = setup
    original = interrupted(monkeypatch, cfg, test, tmp_path / "p.jsonl", at_chunk=2)
    monkeypatch.setattr(predict._HfWorld, "predict", original)
    longer = cfg.model_copy(update={"max_new_tokens": 7})
    result = predict.run(longer, test, tmp_path / "p.jsonl", tmp_path / "p.json", log_dir=tmp_path / "logs")
    reset()
    assert "resumed_chunks" not in result["telemetry"] and result["predicted_rows"] == len(rows)
    assert len(list((tmp_path / "checkpoints").glob("predict-*.jsonl"))) == 1  # the other run's partial is left alone


def test_an_empty_test_file_publishes_an_empty_set(tmp_path, setup):
    cfg, test, _ = setup
    test.write_text("", encoding="utf-8")
    result = predict.run(cfg, test, tmp_path / "p.jsonl", tmp_path / "p.json")
    reset()
    assert (tmp_path / "p.jsonl").read_text() == "" and result["predicted_rows"] == result["test_rows"] == 0


def test_a_bad_test_line_is_named_before_the_model_loads(tmp_path, setup):
    from mmm.io import InputError

    cfg, test, rows = setup
    test.write_text(test.read_text(encoding="utf-8") + "{broken\n", encoding="utf-8")
    nowhere = cfg.model_copy(update={"model": tmp_path / "no-model"})
    with pytest.raises(InputError, match=rf"test.jsonl:{len(rows) + 1}: invalid JSON"):
        predict.run(nowhere, test, tmp_path / "p.jsonl", tmp_path / "p.json")


@pytest.mark.slow
def test_a_killed_run_resumes_its_saved_chunks_and_publishes_the_same_bytes(tmp_path, tiny_model_dir):  # noqa: F811
    """SIGKILL (no cleanup at all) once three chunks are saved; the rerun resumes them (48 chunks of 8 rows)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from configs import write_params

    rows = sample_records()[::2]
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    settings = {"gate": None, "model": str(tiny_model_dir), "batch_size": 4, "max_new_tokens": 24, "chunk_rows": 8,
                "max_rows_per_cell": None, "constrained": "off", "threads": 1, "test": str(test),
                "checkpoints": str(tmp_path / "checkpoints")}
    whole = write_params(tmp_path / "whole.yaml", logs={"dir": str(tmp_path / "logs")},
                         predict={**settings, "out": str(tmp_path / "whole.jsonl"), "metrics": str(tmp_path / "whole.json")})
    killed = write_params(tmp_path / "killed.yaml", logs={"dir": str(tmp_path / "logs")},
                          predict={**settings, "out": str(tmp_path / "killed.jsonl"), "metrics": str(tmp_path / "killed.json")})
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    command = [sys.executable, "-m", "mmm.cli", "predict", "--params"]
    subprocess.run([*command, str(whole)], env=env, check=True, capture_output=True)
    process = subprocess.Popen([*command, str(killed)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    saved: list[Path] = []
    while time.monotonic() < deadline and process.poll() is None:
        saved = list((tmp_path / "checkpoints").glob("predict-*.jsonl"))
        if saved and len(saved[0].read_bytes().splitlines()) >= 1 + 4:  # the fourth may be torn: three are whole
            break
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed.jsonl").exists() and saved
    rerun = subprocess.run([*command, str(killed)], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert json.loads((tmp_path / "logs" / "predict.json").read_text())["resumed_chunks"] >= 3
    assert outputs(tmp_path, "killed") == outputs(tmp_path, "whole")
