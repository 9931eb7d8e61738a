"""In-process generation with a transformers causal LM: batched, left-padded, greedy by default.

The model is loaded only when a run has prompts the cache cannot answer, so a pipeline whose
answers are cached never pays the load. Remote code is never trusted.

Room for constrained decoding: a ``LogitsHook`` (e.g. entity-anchored translation forcing
``LLMRequest.required_terms`` into the answer) contributes logits processors to every batch;
its ``name`` and the terms enter the cache key so constrained and free answers never mix.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from mmm.llm import types as t
from mmm.llm.config import LLMConfig, LLMConfigError
from mmm.llm.types import Completion, Failure, GenParams, LLMRequest

log = logging.getLogger(__name__)


@runtime_checkable
class LogitsHook(Protocol):
    """Adds logits processors to local generation. Change ``name`` whenever behaviour changes."""

    name: str

    def processors(self, tokenizer: Any, requests: Sequence[LLMRequest], prompt_length: int) -> list[Any]:
        """Processors for one batch; rows of ``input_ids`` follow ``requests``; the first
        ``prompt_length`` positions of every row are the (left-padded) prompt."""
        ...


class LocalModel:
    """A loaded model + tokenizer that answers batches of requests sharing one ``GenParams``."""

    def __init__(self, config: LLMConfig, hook: LogitsHook | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(config.local_model_dir)
        if not (path / "config.json").is_file():
            raise LLMConfigError(
                f"local backend: no model at {path} (no config.json); build the default one with "
                f"`dvc repro convert_base` or `mmm convert-base --out {path}`, or set llm.local_model_dir"
            )
        self.config = config
        self.hook = hook
        self.torch = torch
        if config.local_threads:
            torch.set_num_threads(config.local_threads)
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        if config.api == "chat" and not getattr(self.tokenizer, "chat_template", None):
            raise LLMConfigError(
                f"local backend: the tokenizer at {path} has no chat template, so api 'chat' cannot format "
                "messages; use api 'completions' (the right choice for base models)"
            )
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(
            path, dtype=getattr(torch, config.local_dtype), trust_remote_code=False
        )
        self.model.to(config.local_device)
        self.model.eval()
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            self.eos_ids.add(self.tokenizer.eos_token_id)
        log.info("local model %s loaded from %s (%s, %s)", config.model, path, config.local_dtype, config.local_device)

    def render(self, request: LLMRequest) -> str:
        if self.config.api == "chat":
            return self.tokenizer.apply_chat_template(request.chat_messages(), tokenize=False, add_generation_prompt=True)
        return request.completion_prompt()

    def generate(self, requests: Sequence[LLMRequest], seed: int = 0) -> list[Completion | Failure]:
        """Answer ``requests`` (all with the same params) in one padded batch."""
        torch = self.torch
        params: GenParams = requests[0].params
        assert all(r.params == params for r in requests), "a batch must share its GenParams"
        encoded = self.tokenizer(
            [self.render(r) for r in requests],
            return_tensors="pt",
            padding=True,
            add_special_tokens=self.config.api != "chat",  # the chat template already has them
        ).to(self.config.local_device)
        prompt_length = encoded["input_ids"].shape[1]
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "do_sample": params.temperature > 0,
        }
        if params.temperature > 0:
            kwargs["temperature"] = params.temperature
            torch.manual_seed(seed)
        else:  # greedy: silence sampling knobs a generation_config may carry
            kwargs.update(top_p=None, top_k=None, temperature=None)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        if self.hook is not None:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList(self.hook.processors(self.tokenizer, requests, prompt_length))
        with torch.inference_mode():
            output = self.model.generate(**encoded, **kwargs)
        prompt_tokens = encoded["attention_mask"].sum(dim=1).tolist()
        return [
            self._completion(output[i, prompt_length:].tolist(), int(prompt_tokens[i]), params)
            for i in range(len(requests))
        ]

    def _completion(self, ids: list[int], prompt_tokens: int, params: GenParams) -> Completion | Failure:
        count, finish = len(ids), "length"
        for position, token in enumerate(ids):
            if token in self.eos_ids:
                count, finish = position + 1, "stop"
                break
        else:
            pad = self.tokenizer.pad_token_id
            while count and ids[count - 1] == pad and pad not in self.eos_ids:
                count -= 1  # a row that stopped on a stop string is padded until the batch ends
        text = self.tokenizer.decode(ids[:count], skip_special_tokens=True)
        cut = min((text.index(s) for s in params.stop if s in text), default=None)
        if cut is not None:
            text, finish = text[:cut], "stop"
        elif finish == "length" and count < params.max_tokens:
            finish = "stop"
        if not text.strip():
            return Failure(t.EMPTY, f"the local model generated no text ({count} token(s))")
        return Completion(text=text, prompt_tokens=prompt_tokens, completion_tokens=count, finish_reason=finish)
