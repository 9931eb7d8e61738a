"""In-process generation with a transformers causal LM: batched, left-padded, greedy by default.

The model is loaded only when a run has prompts the cache cannot answer, so a pipeline whose
answers are cached never pays the load. Loading, padding, stopping and decoding are
:mod:`mmm.modeling.generation`'s (the core prediction uses too): a local safetensors folder, no
remote code, no hub.

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
from mmm.modeling.generation import Engine, Output, Settings

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
    """A loaded model + tokenizer that answers batches of requests sharing one ``GenParams``.

    It renders requests to token ids and maps the core's answers to ``Completion``/``Failure``."""

    def __init__(self, config: LLMConfig, hook: LogitsHook | None = None):
        path = Path(config.local_model_dir)
        if not (path / "config.json").is_file():
            raise LLMConfigError(
                f"local backend: no model at {path} (no config.json); build the default one with "
                f"`dvc repro convert_base` or `mmm convert-base --out {path}`, or set llm.local_model_dir"
            )
        self.config = config
        self.hook = hook
        if config.local_threads:
            import torch

            torch.set_num_threads(config.local_threads)
        self.engine = Engine.load(path, config.local_dtype, config.local_device)
        self.tokenizer = self.engine.tokenizer
        if config.api == "chat" and not getattr(self.tokenizer, "chat_template", None):
            raise LLMConfigError(
                f"local backend: the tokenizer at {path} has no chat template, so api 'chat' cannot format "
                "messages; use api 'completions' (the right choice for base models)"
            )
        log.info("local model %s loaded from %s (%s, %s)", config.model, path, config.local_dtype, config.local_device)

    def render(self, request: LLMRequest) -> str:
        if self.config.api == "chat":
            return self.tokenizer.apply_chat_template(request.chat_messages(), tokenize=False, add_generation_prompt=True)
        return request.completion_prompt()

    def generate(self, requests: Sequence[LLMRequest], seed: int = 0) -> list[Completion | Failure]:
        """Answer ``requests`` (all with the same params) in one padded batch."""
        params: GenParams = requests[0].params
        assert all(r.params == params for r in requests), "a batch must share its GenParams"
        special = self.config.api != "chat"  # the chat template already has them
        prompts = [self.tokenizer(self.render(r), add_special_tokens=special)["input_ids"] for r in requests]
        settings = Settings(max_new_tokens=params.max_tokens, stop_strings=params.stop,
                            temperature=params.temperature, seed=seed)
        hook = self.hook
        processors = None if hook is None else (lambda width: hook.processors(self.tokenizer, requests, width))
        return [_completion(out) for out in self.engine.generate(prompts, settings, processors)]


def _completion(out: Output) -> Completion | Failure:
    """The OpenAI-style answer: ``finish_reason`` is ``length`` only when the budget ran out."""
    if not out.text.strip():
        return Failure(t.EMPTY, t.LOCAL_EMPTY_DETAIL)
    return Completion(text=out.text, prompt_tokens=out.prompt_tokens, completion_tokens=out.new_tokens,
                      finish_reason="length" if out.finish == "length" else "stop")
