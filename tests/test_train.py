from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_model import one_torch_thread, sample_records, tiny_model_dir  # noqa: F401

from configs import make, write_params
from mmm.modeling.loading import FORMAT_FILE, check_model_dir, load_tokenizer
from mmm.train import Paths, cast_state, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """accelerate keeps process-wide state; each in-process run starts from scratch."""
    from accelerate.state import AcceleratorState, GradientState

    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def paths_in(tmp: Path, train_file: Path) -> Paths:
    return Paths(train_file, tmp / "model", tmp / "train.json", tmp / "loss.csv", tmp / "loss.png")


def test_full_fine_tune_saves_a_plain_reloadable_safetensors_model(tmp_path, tiny_model_dir):  # noqa: F811
    rows = sample_records()[:12]
    cfg = make("train", gate=None, base_model=str(tiny_model_dir), method="full", epochs=2, max_steps=6, learning_rate=3e-3,
                      per_device_batch_size=4, gradient_accumulation_steps=2, save_dtype="bfloat16")
    paths = paths_in(tmp_path, write_rows(tmp_path / "train.jsonl", rows))
    metrics = train(cfg, paths, log_dir=tmp_path / "logs")

    # 12 rows x 2 epochs = 6 batches of 4 -> 3 optimizer steps with accumulation 2
    assert metrics["optimizer_steps"] == 3 and metrics["ranks"][0]["batches"] == 6 and metrics["rows_seen"] == 24
    assert metrics["answer_only_logits"] is True
    assert metrics["tokens"] > metrics["answer_tokens"] > 0 and metrics["tokens_per_s"] > 0
    saved = json.loads(paths.metrics.read_text())
    telemetry = json.loads((tmp_path / "logs" / "train.json").read_text())
    assert telemetry == metrics["telemetry"] and telemetry["wall_time_s"] >= telemetry["train_time_s"]
    assert saved == {k: v for k, v in metrics.items() if k not in ("telemetry", "tokens_per_s")}
    assert not [k for k in saved if k.endswith(("_s", "_per_s"))]  # results only: no time or rate
    assert saved["loss_first"] == round(saved["loss_first"], 4) and saved["base_model"] == tiny_model_dir.name
    files = {p.name for p in paths.out_dir.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", FORMAT_FILE, "README.md"} <= files
    # label prototypes of the SCNM rows, at a layer chosen among the depths' layers (2 layers: 1 and 2)
    assert {"label_prototypes.safetensors", "label_prototypes.json"} <= files
    chosen = saved["label_prototypes"]
    assert chosen["datasets"] == ["SCNM"] and set(chosen["leave_one_row_out_accuracy"]) == {"1", "2"}
    assert chosen["layer"] in (1, 2) and sum(chosen["entities"]["SCNM"]) > 12
    assert json.loads((paths.out_dir / "label_prototypes.json").read_text()) == chosen
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))]
    check_model_dir(paths.out_dir)

    from safetensors import safe_open

    with safe_open(paths.out_dir / "model.safetensors", "pt") as fh:
        keys = set(fh.keys())
        assert {str(fh.get_tensor(k).dtype) for k in keys} == {"torch.bfloat16"}
    assert "lm_head.weight" not in keys  # tied to the embeddings: stored once
    assert json.loads((paths.out_dir / "config.json").read_text())["dtype"] == "bfloat16"

    card = (paths.out_dir / "README.md").read_text()
    import hashlib

    assert hashlib.sha256(paths.train.read_bytes()).hexdigest() in card
    assert f"base_model: {tiny_model_dir.name}" in card and "learning_rate: 0.003" in card
    assert "wall_time" not in card and "tokens_per_s" not in card
    with open(paths.curve) as fh:
        curve = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in curve] == [1, 2, 3]
    assert list(curve[0]) == ["step", "epoch", "loss", "learning_rate", "tokens"]  # no time column
    generation = json.loads((paths.out_dir / "generation_config.json").read_text())
    assert "stop_strings" not in generation and (generation["max_new_tokens"], generation["do_sample"]) == (128, False)
    eos = json.loads((paths.out_dir / "config.json").read_text())["eos_token_id"]
    newline = load_tokenizer(paths.out_dir)("\n", add_special_tokens=False)["input_ids"]  # the tiny BPE's only newline token
    assert generation["eos_token_id"] == [eos, *newline]  # the newline rule as EOS ids (pipeline users have no stop strings)
    assert paths.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lora_is_merged_and_learns(tmp_path, tiny_model_dir):  # noqa: F811
    import torch
    from transformers import AutoModelForCausalLM

    rows = sample_records()[:4]
    cfg = make("train", gate=None, base_model=str(tiny_model_dir), method="lora", epochs=100, max_steps=12, learning_rate=2e-2,
                      per_device_batch_size=4, save_dtype="float32", lr_scheduler="constant_with_warmup",
                      warmup_ratio=0.0, gradient_checkpointing=True)
    paths = paths_in(tmp_path, write_rows(tmp_path / "train.jsonl", rows))
    metrics = train(cfg, paths)
    assert metrics["trainable_parameters"] < metrics["parameters"] / 4
    assert metrics["loss_last_10pct"] < metrics["loss_first"] / 2
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tuned = AutoModelForCausalLM.from_pretrained(paths.out_dir)
    assert not any("lora" in name for name, _ in tuned.named_parameters())
    changed = [n for n, p in tuned.named_parameters() if not torch.equal(p, base.get_parameter(n))]
    assert changed and all("proj" in n for n in changed)  # LoRA deltas landed in the linear layers only
    assert json.loads((paths.out_dir / FORMAT_FILE).read_text())["target"] == "joint"


def written_files(paths: Paths) -> dict[str, bytes]:
    files = {f"model/{p.name}": p.read_bytes() for p in sorted(paths.out_dir.iterdir())}
    return files | {p.name: p.read_bytes() for p in (paths.metrics, paths.curve, paths.plot)}


def test_training_twice_writes_the_same_bytes(tmp_path, tiny_model_dir):  # noqa: F811
    from accelerate.state import AcceleratorState, GradientState

    train_file = write_rows(tmp_path / "train.jsonl", sample_records()[:8])
    cfg = make("train", gate=None, base_model=str(tiny_model_dir), method="lora", epochs=2, max_steps=3, learning_rate=1e-2,
                      per_device_batch_size=4, save_dtype="bfloat16", threads=1)  # LoRA dropout draws random numbers
    runs = []
    for name in ("first", "second"):
        paths = paths_in(tmp_path / name, train_file)
        train(cfg, paths, log_dir=tmp_path / name / "logs")
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
        runs.append(written_files(paths))
    first, second = runs
    assert set(first) >= {"model/model.safetensors", "model/tokenizer.json", "model/README.md", "model/oiellm.json",
                          "model/generation_config.json", "train.json", "loss.csv", "loss.png"}
    assert [name for name in first if first[name] != second.get(name)] == [] and set(first) == set(second)
    where = str(tmp_path.parent).encode()  # the session's temporary root: holds the base model and the inputs
    assert [name for name, data in first.items() if where in data] == []  # no absolute path in any file
    assert b"Matplotlib" not in first["loss.png"]


def test_too_long_examples_are_skipped_and_counted(tmp_path, tiny_model_dir):  # noqa: F811
    rows = sample_records()[:8]
    cfg = make("train", gate=None, base_model=str(tiny_model_dir), method="full", max_steps=1, max_length=60, save_dtype="float32")
    metrics = train(cfg, paths_in(tmp_path, write_rows(tmp_path / "train.jsonl", rows)))
    assert 0 < metrics["skipped_too_long"] < len(rows)


def test_a_failed_run_keeps_the_previous_model(tmp_path, tiny_model_dir):  # noqa: F811
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("previous model")
    bad = write_rows(tmp_path / "train.jsonl", [{"id": "x", "lang": "en", "dataset": "SCNM", "input": "no instruction"}])
    from mmm.io import InputError

    with pytest.raises(InputError, match="train.jsonl:1"):
        train(make("train", gate=None, base_model=str(tiny_model_dir), max_steps=1), paths_in(tmp_path, bad))
    assert (out / "keep.txt").read_text() == "previous model"


def test_cast_state_keeps_tied_tensors_shared():
    import torch

    weight = torch.ones(3, 2)
    cast = cast_state({"embed": weight, "head": weight, "other": torch.zeros(2), "ids": torch.arange(3)}, torch.bfloat16)
    assert cast["embed"] is cast["head"] and cast["embed"].dtype == torch.bfloat16
    assert cast["ids"].dtype == torch.int64


@pytest.mark.parametrize(
    "section, message",
    [
        ({"target": "both"}, "train.target: Input should be 'joint', 'text_only' or 'word_only'"),
        ({"method": "qlora"}, "train.method: Input should be 'lora' or 'full'"),
        ({"mixed_precision": "fp8"}, "train.mixed_precision"),
        ({"max_steps": 0}, "train.max_steps: Input should be greater than or equal to 1"),
        ({"threads": 0}, "train.threads: Input should be greater than or equal to 1"),
        ({"lora": {"rank": 8}}, "train.lora.rank: unknown key"),
        ({"batch_size": 8}, "train.batch_size: unknown key"),
        ({"learning_rate": "1e-5"}, "train.learning_rate: .*expected a number"),
        ({"prototypes": {"datasets": ["TCONER"], "depths": [0.5]}}, "TCONER has open-domain labels"),
        ({"prototypes": {"datasets": ["SCNX"], "depths": [0.5]}}, "unknown dataset 'SCNX'"),
        ({"prototypes": {"datasets": ["SCNM"], "depths": [1.5]}}, "fraction of the model's layers"),
    ],
)
def test_bad_train_params_are_named(section, message):
    with pytest.raises(ValueError, match=message):
        make("train", **section)


def test_paper_profile_trains_like_the_paper(root, tmp_path):
    from mmm import config, profile

    copy = tmp_path / "params.yaml"
    copy.write_text((root / "params.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    profile.apply(root / "params" / "paper.yaml", copy)
    paper = config.load(copy).train
    assert (paper.method, paper.epochs, paper.learning_rate, paper.mixed_precision) == ("full", 3, 1e-5, "bf16")
    assert paper.prototypes.datasets == [] and config.load(copy).predict.label_prototypes is False  # labels as generated


@pytest.mark.parametrize("name", ["cpu", "multi_cpu", "multi_gpu", "fsdp", "deepspeed_zero3"])
def test_accelerate_configs_load(name):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(ROOT / "configs" / "accelerate" / f"{name}.yaml"))
    if name == "deepspeed_zero3":
        ds_file = ROOT / config.deepspeed_config["deepspeed_config_file"]
        assert json.loads(ds_file.read_text())["zero_optimization"]["stage"] == 3
    if name == "fsdp":
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"


@pytest.mark.slow
def test_two_cpu_processes_train_together(tmp_path, tiny_model_dir):  # noqa: F811
    """torchrun gives accelerate a gloo world of 2 CPU processes; both must do work, loss must fall."""
    rows = sample_records()[:16]
    train_file = write_rows(tmp_path / "train.jsonl", rows)
    params = write_params(tmp_path / "params.yaml", logs={"dir": str(tmp_path / "logs")}, predict={"gate": None}, train={
        "gate": None, "base_model": str(tiny_model_dir), "method": "full", "epochs": 50, "max_steps": 12, "learning_rate": 1e-2,
        "per_device_batch_size": 4, "gradient_accumulation_steps": 1, "save_dtype": "float32",
        "lr_scheduler": "constant_with_warmup", "warmup_ratio": 0.0,
        "metrics": str(tmp_path / "train.json"), "curve": str(tmp_path / "loss.csv"), "plot": str(tmp_path / "loss.png")})
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "mmm.cli", "train", "--params", str(params),
               str(train_file), "--model-dir", str(tmp_path / "model")]
    run_group(command, env)
    metrics = json.loads((tmp_path / "train.json").read_text())
    assert metrics["world_size"] == 2 and metrics["distributed_type"] == "MULTI_CPU"
    assert [r["rank"] for r in metrics["ranks"]] == [0, 1]
    assert all(r["batches"] == 12 and r["tokens"] > 0 for r in metrics["ranks"])
    assert metrics["rows_seen"] == 2 * 12 * 4
    assert metrics["loss_last_10pct"] < metrics["loss_first"] - 0.5

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    assert model.config.vocab_size > 0

    # prediction shards each chunk's rows over the same 2-process world and rank 0 writes them all, in order
    # (7 rows in chunks of 3: the last chunk leaves one rank nothing to do)
    test_rows = sample_records()[100:107]
    test_file = write_rows(tmp_path / "test.jsonl", test_rows)
    write_params(params, logs={"dir": str(tmp_path / "logs")}, predict={"gate": None, "batch_size": 2, "max_new_tokens": 4,
                                                                        "max_rows_per_cell": None, "chunk_rows": 3})
    run_group([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "mmm.cli", "predict", "--params", str(params),
               str(test_file), "--model-dir", str(tmp_path / "model"), "--out", str(tmp_path / "predictions.jsonl"),
               "--metrics", str(tmp_path / "predict.json")], env)
    predictions = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in predictions] == [r["id"] for r in test_rows]
    assert json.loads((tmp_path / "predict.json").read_text())["processes"] == 2


def run_group(command: list[str], env: dict[str, str], timeout: int = 240) -> None:
    """Run in its own process group, so a hang cannot leave orphaned workers behind."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"{command[0]} did not finish in {timeout} s")
    assert process.returncode == 0, stderr[-3000:]


@pytest.mark.parametrize("depths, layers, expected", [
    ([0.33, 0.5, 0.67, 0.83], 18, [6, 9, 12, 15]),  # Gemma 3 270M
    ([0.33, 0.5, 0.67, 0.83], 2, [1, 2]),  # repeats dropped, never layer 0 (the embeddings)
    ([0.5, 1.0], 32, [16, 32]),
])
def test_prototype_layers_are_fractions_of_the_depth(depths, layers, expected):
    from mmm.train import prototype_layers

    assert prototype_layers(depths, layers) == expected
