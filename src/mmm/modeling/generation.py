"""The one generation core: test-set prediction, ``mmm extract`` and the local LLM backend all use it.

* Loading goes through :mod:`mmm.modeling.loading` (a local safetensors folder, no remote code,
  no hub), so every in-process model keeps the same promise.
* Prompts arrive as token ids (each caller tokenizes its own way) and are left-padded by the
  tokenizer, so every row ends where generation starts and batched answers equal one-by-one ones.
* A row stops at an EOS id (the tokenizer's and the model's generation config) or at a stop
  string. transformers' ``StopStringCriteria`` ends generation there (it also catches a stop
  string inside a token, e.g. ``.\\n``); :func:`finish_row` is the single place that turns the
  generated ids into text, token count and finish reason. Prediction's newline rule is just the
  stop string ``"\\n"`` (:meth:`Engine.folder_settings`).
* A trained folder's ``generation_config.json`` carries the newline rule for standard tools as
  EOS ids (:func:`oiellm_generation_config`); the engine leaves those ids to its stop string,
  which cuts the newline off, so its answers do not depend on how a folder spells the rule.
* Extra ``LogitsProcessor`` s (e.g. anchored translation's constraints) come in per batch through
  a callable that is told the padded prompt width.

Every generation knob is passed to ``generate`` explicitly, so a folder's own generation config
(e.g. an OIELLM's newline stop) never leaks into a caller that did not ask for it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mmm.modeling.loading import check_model_dir, load_model, load_tokenizer
from mmm.modeling.sequence import SEPARATOR

DEFAULT_MAX_NEW_TOKENS = 128  # prediction's default answer budget, also written into trained folders
Finish = Literal["eos", "stop", "length"]
ProcessorFactory = Callable[[int], Sequence[Any]]  # padded prompt width -> logits processors for the batch


@dataclass(frozen=True)
class Settings:
    """How to generate one batch. ``temperature`` 0 is greedy; ``seed`` only matters when sampling."""

    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    stop_strings: tuple[str, ...] = ()
    temperature: float = 0.0
    min_new_tokens: int = 0  # suppresses EOS (not stop strings) before this many tokens
    seed: int = 0


@dataclass(frozen=True)
class Output:
    """One row's answer: ``text`` is decoded without special tokens and cut before the first stop string."""

    text: str
    new_tokens: int  # up to and including the token that ended the row
    prompt_tokens: int
    finish: Finish  # eos | stop (a stop string, or stopped early) | length (max_new_tokens)


@dataclass
class Engine:
    """A model and its left-padding tokenizer, loaded once, answering batches of token-id prompts."""

    tokenizer: Any
    model: Any
    device: Any
    eos_ids: frozenset[int]  # the tokenizer's EOS and every EOS id of the model's generation config

    @classmethod
    def load(cls, model_dir: str | Path, dtype: str = "float32", device: Any = "cpu") -> "Engine":
        folder = check_model_dir(model_dir)
        tokenizer = load_tokenizer(folder, padding_side="left")
        model = load_model(folder, dtype)
        model.to(device).eval()
        configured = model.generation_config.eos_token_id
        eos = set(configured if isinstance(configured, (list, tuple)) else [] if configured is None else [configured])
        eos = {i for i in eos if SEPARATOR not in tokenizer.decode([i])}  # the stop string's job (module doc)
        eos.add(tokenizer.eos_token_id)
        return cls(tokenizer, model, device, frozenset(eos))

    def folder_settings(self) -> Settings:
        """The generation settings the folder ships (``generation_config.json``).

        A folder without stop strings (a trained OIELLM, whose config spells the newline rule as
        EOS ids for standard tools; a base model) gets the OIELLM format's rule: stop at the
        separator; without a budget, answer at most the default one."""
        config = self.model.generation_config
        stop = config.stop_strings
        return Settings(
            max_new_tokens=config.max_new_tokens or DEFAULT_MAX_NEW_TOKENS,
            stop_strings=tuple([stop] if isinstance(stop, str) else stop or [SEPARATOR]),
        )

    def generate(self, prompts: Sequence[Sequence[int]], settings: Settings,
                 processors: ProcessorFactory | None = None) -> list[Output]:
        """Answer one batch of prompts (token ids, special tokens included), in order."""
        import torch
        from transformers import LogitsProcessorList

        batch = self.tokenizer.pad({"input_ids": [list(p) for p in prompts]}, padding=True, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        width = batch["input_ids"].shape[1]
        kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": sorted(self.eos_ids),
            "do_sample": settings.temperature > 0,
            "stop_strings": list(settings.stop_strings) or None,
            "num_beams": 1,
            "use_cache": True,
        }
        if settings.stop_strings:
            kwargs["tokenizer"] = self.tokenizer
        if settings.min_new_tokens:
            kwargs["min_new_tokens"] = settings.min_new_tokens
        if settings.temperature > 0:
            kwargs["temperature"] = settings.temperature
            torch.manual_seed(settings.seed)
        else:  # greedy: silence sampling knobs a folder's generation config may carry
            kwargs.update(top_p=None, top_k=None, temperature=None)
        if processors is not None:
            kwargs["logits_processor"] = LogitsProcessorList(processors(width))
        with torch.inference_mode():
            output = self.model.generate(**batch, **kwargs)
        prompt_tokens = batch["attention_mask"].sum(dim=1).tolist()
        return [finish_row(self.tokenizer, output[i, width:].tolist(), int(prompt_tokens[i]), self.eos_ids, settings)
                for i in range(len(prompts))]


def finish_row(tokenizer: Any, ids: list[int], prompt_tokens: int, eos_ids: frozenset[int], settings: Settings) -> Output:
    """Where a generated row ends and why: the first stop string or EOS, else the row as generated.

    A row that hit neither but ends in padding stopped early while the batch went on (transformers
    pads finished rows); the padding is not part of the answer."""
    eos_at = next((n for n, token in enumerate(ids) if token in eos_ids), None)
    end = len(ids) if eos_at is None else eos_at
    decode = lambda n: tokenizer.decode(ids[:n], skip_special_tokens=True)  # noqa: E731
    stops = settings.stop_strings
    if stops and any(s in decode(end) for s in stops):
        # the shortest prefix that shows a stop string (a prefix that shows one, every longer one does)
        count = bisect.bisect_left(range(1, end + 1), True, key=lambda n: any(s in decode(n) for s in stops)) + 1
        text = decode(count)
        return Output(text[:min(text.index(s) for s in stops if s in text)], count, prompt_tokens, "stop")
    if eos_at is not None:
        return Output(decode(eos_at + 1), eos_at + 1, prompt_tokens, "eos")
    count, pad = len(ids), tokenizer.pad_token_id
    while count and ids[count - 1] == pad and pad not in eos_ids:
        count -= 1
    finish: Finish = "length" if count == settings.max_new_tokens else "stop"
    return Output(decode(count), count, prompt_tokens, finish)


def separator_ids(tokenizer: Any) -> list[int]:
    """Every token id whose text contains the separator (Gemma: the 32 newline-run tokens)."""
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    return [i for i, text in enumerate(texts) if SEPARATOR in text]


def oiellm_generation_config(tokenizer: Any, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> Any:
    """What a trained folder ships so ``mmm extract`` and standard tools need nothing else: greedy,
    the default answer budget, stop at EOS or at the separator (the model answers on one line).

    The separator rule is written as EOS ids (:func:`separator_ids`), not as ``stop_strings``:
    ``generate`` refuses stop strings without a tokenizer argument, which transformers' text-generation
    pipeline does not pass, so a folder with them cannot be used by ``pipeline(...)`` at all."""
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=[tokenizer.eos_token_id, *separator_ids(tokenizer)],
        pad_token_id=tokenizer.pad_token_id, max_new_tokens=max_new_tokens, do_sample=False,
    )
