"""Fine-tune OIELLM on the MMM training split with transformers + accelerate (+ peft for LoRA).

One loop serves every engine: it is started by ``accelerate launch`` (or ``torchrun``) and
``Accelerator`` takes the world from the launcher, so the same code runs on one CPU process, in
a gloo world of CPU processes, or with DDP / FSDP / DeepSpeed ZeRO-3 on GPUs, chosen only by the
accelerate config file (``configs/accelerate/``). What it does, following the paper (Sec. 4-5):

* each example is ``input`` + newline + answer + EOS, with the loss on the answer only
  (:mod:`mmm.modeling.sequence`), batches bucketed by length (:mod:`mmm.modeling.batching`);
* the embedded default is LoRA on Gemma 3 270M for a few minutes of CPU; the paper profile is a
  full fine-tune of LLaMA3-8B, 3 epochs, lr 1e-5, bf16 (``params/paper.yaml``);
* the result is a plain safetensors folder (LoRA merged in) with its tokenizer, a model card,
  ``oiellm.json`` and ``generation_config.json`` (how to answer: greedy, stop at EOS or the
  newline, the default budget), so the folder alone is enough for ``mmm extract``;
* tracked outputs hold results only and are byte-identical when the same inputs are trained
  again on the same machine (seeds, fixed threads, deterministic kernels:
  :mod:`mmm.modeling.determinism`; no times, dates or absolute paths in any file). Losses are
  rounded to ``LOSS_DECIMALS`` (4) decimals. Times and throughput go to the untracked run log
  (``mmm.runlog``, name ``train``).
* with ``train.checkpoint_every`` the run saves its whole state every N optimizer steps into
  ``train.checkpoints`` and ``train.resume: auto`` continues a killed run from the newest
  checkpoint of the same params, data and base model; the published outputs are the same bytes
  as an uninterrupted run's (:mod:`mmm.modeling.checkpoints`).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmm import publish, runlog
from mmm.config import TrainConfig
from mmm.errors import DataError, ParamsError
from mmm.io import portable_path, read_records, write_json
from mmm.modeling.determinism import reproducible
from mmm.modeling.loading import (
    check_model_dir,
    load_model,
    load_tokenizer,
    write_format,
)
from mmm.modeling.sequence import IGNORE_INDEX, Example, encode_example
from mmm.modeling.world import cpu_world
from mmm.records import Sample
from mmm.validation import gate

if TYPE_CHECKING:
    from mmm.modeling.checkpoints import Checkpoint

log = logging.getLogger(__name__)

LOSS_DECIMALS = 4  # losses in metrics and the curve: enough to compare runs, stable in the last digit


@dataclass
class Paths:
    train: Path
    out_dir: Path
    metrics: Path
    curve: Path
    plot: Path

    def outputs(self) -> dict[str, Path]:
        """What training publishes, as one set (``mmm.publish``): the model folder, curve, plot, metrics."""
        return {"model": self.out_dir, "curve": self.curve, "plot": self.plot, "metrics": self.metrics}


def encode_all(records: list[dict], tokenizer: Any, cfg: TrainConfig) -> tuple[list[Example], int]:
    """Tokenize every record; examples longer than ``max_length`` are skipped (and counted), never cut."""
    examples, too_long = [], 0
    for record in records:
        example = encode_example(tokenizer, Sample.from_record(record), cfg.target)
        if len(example) > cfg.max_length:
            too_long += 1
            continue
        examples.append(example)
    return examples, too_long


def train(cfg: TrainConfig, paths: Paths, log_dir: str | Path | None = None) -> dict[str, Any]:
    """Run the fine-tune in this process (one rank of whatever world the launcher set up).

    Returns, on the main process, the metrics written plus ``telemetry`` (times and throughput,
    also written to the run log in ``log_dir``) and its ``tokens_per_s`` for the summary line;
    ``{}`` on the others. Refuses to start (``GateError``), before any model loads, unless the validation
    gate ``cfg.gate`` passed ``paths.train`` as it is now."""
    publish.check_distinct(paths.outputs(), [paths.train, Path(cfg.base_model)], folders=["model"])
    gate.require(cfg.gate, paths.train, "train")
    with reproducible(cfg.seed, cfg.threads):
        return _train(cfg, paths, log_dir)


def _train(cfg: TrainConfig, paths: Paths, log_dir: str | Path | None) -> dict[str, Any]:
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DistributedType, set_seed
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm
    from transformers import get_scheduler

    from mmm.modeling.batching import bucketed_order, collate
    from mmm.modeling.loss import AnswerLoss

    wall_start = time.perf_counter()
    # The Accelerator must exist before the model: DeepSpeed ZeRO-3 then builds it sharded.
    accelerator = Accelerator(gradient_accumulation_steps=cfg.gradient_accumulation_steps,
                              mixed_precision=cfg.mixed_precision, cpu=cpu_world())
    sharded = accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)
    if sharded and cfg.method == "lora":
        raise ParamsError("train.method=lora is supported on one process or DDP (multi_gpu.yaml); "
                         "FSDP/DeepSpeed are for the full fine-tune (method: full)")
    rank, world = accelerator.process_index, accelerator.num_processes
    check_model_dir(cfg.base_model)

    records = read_records(paths.train)
    tokenizer = load_tokenizer(cfg.base_model)
    examples, too_long = encode_all(records, tokenizer, cfg)
    if not examples:
        raise DataError(f"{paths.train}: no training example fits train.max_length={cfg.max_length}")
    if too_long:
        log.warning("skipped %d of %d examples longer than max_length=%d", too_long, len(records), cfg.max_length)

    set_seed(cfg.seed)  # before the model exists: LoRA init and dropout are reproducible
    model = build_model(cfg)
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in model.parameters())
    n_trainable = sum(p.numel() for p in trainable)

    order = bucketed_order([len(e) for e in examples], cfg.per_device_batch_size, cfg.epochs, cfg.seed,
                           bucket=cfg.bucket_by_length)
    pad_id = tokenizer.pad_token_id
    loader = DataLoader([examples[i] for i in order], batch_size=cfg.per_device_batch_size, shuffle=False,
                        collate_fn=lambda batch: collate(batch, pad_id))
    optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    batches_per_rank = math.ceil(len(loader) / world)
    total_steps = math.ceil(batches_per_rank / cfg.gradient_accumulation_steps)
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    # accelerate steps the scheduler once per process per optimizer step
    scheduler = get_scheduler(cfg.lr_scheduler, optimizer,
                              num_warmup_steps=math.ceil(cfg.warmup_ratio * total_steps) * world,
                              num_training_steps=total_steps * world)
    wrapper = AnswerLoss(model)
    wrapper, optimizer, loader, scheduler = accelerator.prepare(wrapper, optimizer, loader, scheduler)
    fast_loss = check_answer_loss(accelerator, wrapper, collate([examples[i] for i in order[:cfg.per_device_batch_size]], pad_id))
    distributed_type = str(accelerator.distributed_type).split(".")[-1]
    resumable = Resumable.start(accelerator, cfg, paths.train, distributed_type)

    log.info("rank %d/%d: %d examples, %d optimizer steps, %s of %s parameters trainable (%s)",
             rank, world, len(examples), total_steps, f"{n_trainable:,}", f"{n_params:,}", cfg.method)
    curve: list[dict[str, Any]] = []
    batches = tokens = answer_tokens = rows_seen = 0
    step = resumed_step = resumed_tokens = 0
    batch_iter: Iterable[dict[str, Any]] = loader
    if resumable.resume_from is not None:
        position = resumable.resume_from.state
        step, curve = position["step"], position["curve"]
        resumed_step, resumed_tokens = step, sum(r[3] for r in position["ranks"])
        batches, rows_seen, tokens, answer_tokens = position["ranks"][rank][1:]
        # Start iterating before the state comes back: starting a DataLoader draws from the RNG
        # (its base seed; accelerate syncs the ranks' RNGs), which the stopped run had done before
        # its checkpoint. Loading afterwards gives the next batch exactly the stopped run's RNG.
        skipping = iter(accelerator.skip_first_batches(loader, batches))
        first = next(skipping, None)
        accelerator.load_state(str(resumable.resume_from.path))
        batch_iter = itertools.chain([first], skipping) if first is not None else ()
        log.info("rank %d: resumed from %s at step %d, batch %d", rank, resumable.resume_from.path, step, batches)
    window_loss = torch.zeros((), device=accelerator.device)
    window_batches = 0
    examples_per_step = cfg.per_device_batch_size * cfg.gradient_accumulation_steps * world
    train_start = time.perf_counter()
    wrapper.train()
    progress = tqdm(total=total_steps, initial=step, desc="train", disable=not accelerator.is_local_main_process)
    for batch in batch_iter if step < total_steps else ():
        with accelerator.accumulate(wrapper):
            loss = wrapper(**batch)
            accelerator.backward(loss)
            if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                accelerator.clip_grad_norm_(wrapper.parameters(), cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        batches += 1
        rows_seen += batch["input_ids"].shape[0]
        tokens += int(batch["attention_mask"].sum())
        answer_tokens += int((batch["labels"] != IGNORE_INDEX).sum())
        window_loss += loss.detach().float()
        window_batches += 1
        if not accelerator.sync_gradients:
            continue
        step += 1
        mean_loss = accelerator.reduce(window_loss / window_batches, reduction="mean").item()
        window_loss.zero_()
        window_batches = 0
        curve.append({"step": step, "epoch": round(step * examples_per_step / len(examples), 4),
                      "loss": round(mean_loss, LOSS_DECIMALS), "learning_rate": scheduler.get_last_lr()[0],
                      "tokens": tokens * world})
        progress.update(1)
        progress.set_postfix(loss=f"{mean_loss:.3f}")
        if step >= total_steps:
            break
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            counters = accelerator.gather(torch.tensor([[rank, batches, rows_seen, tokens, answer_tokens]],
                                                       device=accelerator.device)).tolist()
            resumable.save(accelerator, step, {"curve": curve, "ranks": counters})
    progress.close()
    train_time = time.perf_counter() - train_start

    per_rank = accelerator.gather(torch.tensor([[rank, batches, rows_seen, tokens, answer_tokens]],
                                               device=accelerator.device)).tolist()
    ranks = [dict(zip(("rank", "batches", "rows", "tokens", "answer_tokens"), map(int, r))) for r in per_rank]
    total_tokens = sum(r["tokens"] for r in ranks)
    metrics = {
        "base_model": portable_path(cfg.base_model),
        "method": cfg.method,
        "target": cfg.target,
        "distributed_type": distributed_type,
        "world_size": world,
        "mixed_precision": cfg.mixed_precision,
        "train_rows": len(records),
        "skipped_too_long": too_long,
        "optimizer_steps": step,
        "rows_seen": sum(r["rows"] for r in ranks),
        "epochs_seen": round(sum(r["rows"] for r in ranks) / len(examples), 3),
        "tokens": total_tokens,
        "answer_tokens": sum(r["answer_tokens"] for r in ranks),
        "loss_first": curve[0]["loss"] if curve else None,
        "loss_last": curve[-1]["loss"] if curve else None,
        "loss_last_10pct": _tail_mean([r["loss"] for r in curve]),
        "answer_only_logits": fast_loss,
        "parameters": n_params,
        "trainable_parameters": n_trainable,
        "ranks": ranks,
    }
    main = accelerator.is_main_process
    with publish.outputs(paths.outputs() if main else {}, folders=["model"]) as out:
        save_model(accelerator, wrapper, tokenizer, cfg, paths, records, metrics, out.get("model"))
        if main:
            found = write_prototypes(cfg, out["model"], records)
            if found is not None:
                metrics["label_prototypes"] = found
            from mmm.modeling.card import plot_curve, write_curve

            write_curve(out["curve"], curve)
            plot_curve(out["plot"], curve, f"{Path(cfg.base_model).name} {cfg.method} ({cfg.target}), {world} process(es)")
            write_json(out["metrics"], metrics)
    accelerator.wait_for_everyone()
    if main:
        resumable.finished()
    accelerator.end_training()
    if not main:
        return {}
    telemetry = {
        "train_time_s": round(train_time, 1),
        "wall_time_s": round(time.perf_counter() - wall_start, 1),
        "tokens_per_s": round((total_tokens - resumed_tokens) / train_time, 1) if train_time > 0 else None,
        "threads": torch.get_num_threads(),
        "resumed_from_step": resumed_step,  # 0: started from scratch; tokens_per_s counts this run's tokens only
    }
    runlog.write(log_dir, "train", telemetry)
    return {**metrics, "telemetry": telemetry, "tokens_per_s": telemetry["tokens_per_s"]}


@dataclass
class Resumable:
    """The checkpoint side of one run: where it saves, its fingerprint (main process) and what it resumes."""

    folder: Path
    current: dict[str, Any] | None
    resume_from: Checkpoint | None  # the same on every rank

    @classmethod
    def start(cls, accelerator: Any, cfg: TrainConfig, train_file: Path, distributed_type: str) -> Resumable:
        """Decide on the main process whether to resume and from where; every rank learns the answer."""
        from accelerate.utils import broadcast_object_list

        from mmm.modeling import checkpoints

        folder = Path(cfg.checkpoints)
        current, chosen = None, None
        if accelerator.is_main_process:
            has_any = bool(checkpoints.complete(folder))
            if cfg.checkpoint_every or (cfg.resume == "auto" and has_any):
                current = checkpoints.fingerprint(cfg, train_file, accelerator.num_processes, distributed_type)
            checkpoints.clear_temporaries(folder)
            if cfg.resume == "auto" and has_any:
                chosen = checkpoints.find_resumable(folder, current)
            elif cfg.resume == "never" and current is not None:
                checkpoints.remove_run(folder, current, "train.resume is never")
        shared = [chosen]
        if accelerator.num_processes > 1:
            broadcast_object_list(shared)
        return cls(folder, current, shared[0])

    def save(self, accelerator: Any, step: int, state: dict[str, Any]) -> None:
        from mmm.modeling import checkpoints

        checkpoints.save(accelerator, self.folder, step, {"step": step, **state}, self.current)

    def finished(self) -> None:
        """The model is published: the run's checkpoints are no longer needed (main process)."""
        from mmm.modeling import checkpoints

        if self.current is not None:
            checkpoints.remove_run(self.folder, self.current, "the model is published")


def build_model(cfg: TrainConfig) -> Any:
    """The base model, with activation checkpointing and a LoRA adapter if the params ask for them."""
    model = load_model(cfg.base_model, cfg.load_dtype)
    if cfg.gradient_checkpointing:
        enable_checkpointing(model)
    model.config.use_cache = False  # no generation during training
    if cfg.method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(
            r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
            target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM"))
    return model


def enable_checkpointing(model: Any) -> None:
    """Recompute activations in backward (non-reentrant: works with DDP and frozen LoRA bases)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5 name
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def check_answer_loss(accelerator: Any, wrapper: Any, probe: dict[str, Any], rtol: float = 1e-3) -> bool:
    """Compare the answer-only loss with the model's own on one batch (every rank); keep it only if all agree."""
    import torch

    wrapper.eval()  # no dropout: both paths see the same network
    with torch.no_grad():
        mine, own = wrapper(**{k: v.to(accelerator.device) for k, v in probe.items()}, mode="check").tolist()
    wrapper.train()
    agree = accelerator.gather(torch.tensor([float(math.isclose(mine, own, rel_tol=rtol, abs_tol=1e-4))],
                                            device=accelerator.device))
    fast = bool(agree.min().item() == 1.0)
    accelerator.unwrap_model(wrapper).fast = fast
    if not fast:
        log.warning("answer-only loss %.5f != the model's %.5f: training with the model's forward (slower)", mine, own)
    return fast


def _tail_mean(values: list[float]) -> float | None:
    if not values:
        return None
    tail = values[-max(1, len(values) // 10):]
    return round(sum(tail) / len(tail), LOSS_DECIMALS)


def save_model(accelerator: Any, model: Any, tokenizer: Any, cfg: TrainConfig, paths: Paths,
               records: list[dict], metrics: dict[str, Any], stage: Path | None) -> None:
    """Write the merged model, tokenizer, format file and card into ``stage`` (main process only).

    Every rank must call it (sharded weights are gathered); ``stage`` is the temporary folder
    the output set publishes as ``paths.out_dir``."""
    from mmm.modeling.card import data_summary, write_model_card
    from mmm.modeling.generation import oiellm_generation_config
    from mmm.modeling.loading import torch_dtype

    accelerator.wait_for_everyone()
    # get_state_dict gathers shards (FSDP, ZeRO-3) and must run on every rank
    state = None if cfg.method == "lora" else accelerator.get_state_dict(model)
    if not accelerator.is_main_process:
        return
    unwrapped = accelerator.unwrap_model(model).lm
    if cfg.method == "lora":
        unwrapped = unwrapped.merge_and_unload()
        state = unwrapped.state_dict()
    else:
        state = {k.removeprefix("lm."): v for k, v in state.items()}
    state = cast_state(state, torch_dtype(cfg.save_dtype))
    unwrapped.config.use_cache = True
    unwrapped.generation_config = oiellm_generation_config(tokenizer)
    assert stage is not None, "the main process saves into the output set's folder"
    unwrapped.save_pretrained(stage, state_dict=state)
    _record_dtype(stage / "config.json", cfg.save_dtype)
    tokenizer.save_pretrained(stage)
    base = portable_path(cfg.base_model)
    write_format(stage, cfg.target, base)
    write_model_card(stage, base_model=base, base_info=_base_info(cfg.base_model),
                     data=data_summary(paths.train, records), params={**cfg.to_params(), "base_model": base},
                     metrics=metrics)
    pickles = [p.name for p in stage.iterdir() if p.suffix in {".bin", ".pt", ".pth", ".pkl"}]
    if pickles:
        raise RuntimeError(f"refusing to publish pickle files: {', '.join(pickles)}")


def prototype_layers(depths: list[float], layers: int) -> list[int]:
    """Candidate layers (1..``layers``) at fractions ``depths`` of the model's depth, in order, without repeats."""
    chosen: list[int] = []
    for depth in depths:
        layer = min(layers, max(1, round(depth * layers)))
        if layer not in chosen:
            chosen.append(layer)
    return chosen


def write_prototypes(cfg: TrainConfig, folder: Path, records: list[dict]) -> dict[str, Any] | None:
    """Label prototypes of ``cfg.prototypes.datasets`` in the saved ``folder``, built from the model as prediction
    loads it (the stored dtype, computed in float32); their metadata, or None if none were written."""
    from mmm.modeling import prototypes
    from mmm.modeling.loading import load_model, load_tokenizer

    if not cfg.prototypes.datasets:
        return None
    model = load_model(folder, "float32").eval()
    tokenizer = load_tokenizer(folder, padding_side="right")
    layers = prototype_layers(cfg.prototypes.depths, model.config.num_hidden_layers)
    found = prototypes.build(model, tokenizer, records, cfg.prototypes.datasets, layers)
    if found is None:
        return None
    prototypes.save(found, folder)
    return found.meta


def _record_dtype(config_file: Path, dtype: str) -> None:
    """save_pretrained writes the dtype of the in-memory model; record the dtype actually stored."""
    import json

    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["dtype"] = dtype
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def cast_state(state: dict[str, Any], dtype: Any) -> dict[str, Any]:
    """Cast floating tensors, keeping tied weights (embeddings = LM head) one shared tensor so
    transformers recognises and drops the alias instead of storing the matrix twice."""
    cast: dict[tuple[int, int, tuple[int, ...]], Any] = {}
    out = {}
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            out[name] = tensor
            continue
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key not in cast:
            cast[key] = tensor.to(dtype)
        out[name] = cast[key]
    return out


def _base_info(base_model: str) -> dict[str, Any]:
    """What the card says about the base: its model type and, if converted here, the conversion record."""
    import json

    info: dict[str, Any] = {}
    config = Path(base_model, "config.json")
    if config.exists():
        data = json.loads(config.read_text(encoding="utf-8"))
        info["model_type"] = data.get("model_type")
    conversion = Path(base_model, "conversion.json")
    if conversion.exists():
        data = json.loads(conversion.read_text(encoding="utf-8"))
        info.update({k: data[k] for k in ("source_package", "source_version", "gguf_file", "gguf_sha256") if k in data})
    return {k: v for k, v in info.items() if v is not None}
