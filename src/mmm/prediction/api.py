"""The ``openai`` backend: an OIELLM served by an OpenAI-compatible server (vLLM), asked through ``mmm.llm``.

Each row is one plain completion (``/v1/completions``: the model is a base-style LM) of the training prompt
``input + "\\n"``, greedy, stopped at ``"\\n"`` (EOS is the server's, from the model's own config), at most
``max_new_tokens``. ``mmm.llm`` brings the cache, concurrency, retries, rate limits, budget and progress bar; the
answers are cached under the sha256 of the local model folder (:func:`~mmm.prediction.partial.weights_sha256`), not
the served name, so a retrained model served under the same name never replays its predecessor's answers, and the
same weights served under another name replay theirs.

``finish`` from the API's ``finish_reason``: ``length`` -> ``max_new_tokens``; ``stop`` -> ``newline`` when the
server names ``"\\n"`` as its ``stop_reason`` (vLLM does), else ``eos`` (a server that does not say is taken to
have stopped at EOS, the trained ending). An empty answer (the model ended at once) is an empty prediction,
``eos``, after the LLM layer's retries. Constrained decoding and label rescoring need the model's logits, which a
server does not give: :func:`check_servable` refuses them before anything is sent.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmm.config import LLMConfig
from mmm.errors import IncompleteRun, MMMError
from mmm.llm import GenParams, LLMRequest, ResponseCache, RunSummary, new_budget, run_requests
from mmm.llm import types as t
from mmm.llm.pending import describe
from mmm.modeling.constrained import ConstraintError, check_mode
from mmm.modeling.generation import DEFAULT_MAX_NEW_TOKENS
from mmm.modeling.loading import check_model_dir, read_format
from mmm.modeling.sequence import SEPARATOR, prompt_text
from mmm.prediction.partial import weights_sha256
from mmm.prediction.types import Generation


class PredictionFailed(MMMError):
    """Rows the server did not answer (after retries): nothing is published; a rerun sends only them."""


def check_servable(constrained: str, rescore_labels: bool, key: str = "predict.constrained") -> None:
    """Refuse what needs the model's logits, before anything is sent."""
    if check_mode(constrained) != "off":
        raise ConstraintError(f"{key} {constrained!r} needs the model's logits, which an OpenAI-compatible server "
                              f"does not give: set {key}: off for backend openai (params.yaml's default is schema)")
    if rescore_labels:
        raise ConstraintError("rescore_labels needs the model's logits: backend openai cannot rescore, "
                              "set predict.rescore_labels: false")


def server_config(llm: LLMConfig, base_url: str | None, served_model: str, concurrency: int) -> LLMConfig:
    """The ``llm`` settings (retries, timeouts, limits, budget, cache, progress) pointed at the model server."""
    data = llm.model_dump(by_alias=True)
    data.update(backend="openai", api="completions", batch=False, base_url=base_url, model=served_model,
                concurrency=concurrency)
    return LLMConfig.model_validate(data)


class ApiGenerator:
    """``mmm.predict.Generator``'s ``generate`` over a server; the folder gives the format, the budget and the key."""

    def __init__(self, model_dir: str | Path, llm: LLMConfig, weights: str | None = None):
        check_model_dir(model_dir)
        self.format = read_format(model_dir)
        self.weights = weights or weights_sha256(model_dir)
        self.llm = llm
        self.budget = new_budget(llm)  # one budget for every call of the run (llm.max_requests bounds the run)
        self.max_new_tokens = _folder_budget(Path(model_dir))
        self.summaries: list[RunSummary] = []
        # one shard for every call: loaded once, appended to, compacted once by close() (not per chunk)
        self.cache = ResponseCache(llm.cache_dir, llm.family, self.cache_identity)

    @property
    def target(self) -> str:
        return self.format["target"]

    @property
    def cache_identity(self) -> str:
        """What the LLM cache files answers under (key and shard): the weights, not the served name."""
        return f"weights-sha256-{self.weights}"

    def generate(self, inputs: list[str], max_new_tokens: int | None = None, batch_size: int = 0,
                 progress: bool = False, constraints: Sequence[Any] | None = None, **_: Any) -> list[Generation]:
        """Greedy answers for ``inputs``, in input order; ``IncompleteRun`` (exit 75) when the budget stopped the run,
        ``PredictionFailed`` when rows failed after retries (answers so far stay cached either way)."""
        if constraints is not None and any(c is not None for c in constraints):
            raise ConstraintError("constrained decoding needs the model's logits: not with backend openai")
        params = GenParams(max_tokens=max_new_tokens or self.max_new_tokens, temperature=0.0, stop=(SEPARATOR,))
        requests = [LLMRequest(str(i), prompt_text(text), params) for i, text in enumerate(inputs)]
        report = run_requests(requests, self.llm, desc="predict", budget=self.budget, cache_as=self.cache_identity,
                              cache=self.cache)
        self.summaries.append(report.summary)
        results = [report.results[r.id] for r in requests]
        pending = Counter(r.error for r in results if r.pending)
        failed = [r for r in results if not r.ok and not r.pending and r.error != t.EMPTY]
        if failed:
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(Counter(r.error for r in failed).items()))
            raise PredictionFailed(f"{len(failed)} of {len(inputs)} rows got no answer from {self.llm.base_url or 'the server'} "
                                   f"({reasons}; first: {failed[0].detail}); answers so far are cached: rerun to continue")
        if pending:
            raise IncompleteRun(describe(pending, len(inputs), "rows", self.llm, [report.summary]))
        return [Generation((r.text or "").strip(), finish_of(r.finish_reason, r.stop_reason), r.completion_tokens)
                for r in results]

    def close(self) -> None:
        """Compact the cache shard once (sorted, one line per key), after the run's last call or a stop."""
        if self.cache.added:
            self.cache.compact()

    def telemetry(self) -> dict[str, Any]:
        """The LLM layer's counters summed over the run's calls (requests, cache hits, sent, retries, tokens, time)."""
        total: Counter[str] = Counter()
        failures: Counter[str] = Counter()
        for summary in self.summaries:
            metrics = summary.to_metrics()
            total.update({k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                          and k != "requests_per_s"})
            failures.update(summary.failures)
        return {**{k: round(v, 3) for k, v in total.items()}, "failures": dict(sorted(failures.items())),
                "calls": len(self.summaries)}


def finish_of(finish_reason: str | None, stop_reason: str | None) -> str:
    """The predictions' ``finish`` for an API answer (module docstring)."""
    if finish_reason == "length":
        return "max_new_tokens"
    return "newline" if stop_reason == SEPARATOR else "eos"


def _folder_budget(model_dir: Path) -> int:
    """The answer budget the folder ships (``generation_config.json``), as ``mmm extract`` uses it."""
    path = model_dir / "generation_config.json"
    if path.is_file():
        value = json.loads(path.read_text(encoding="utf-8")).get("max_new_tokens")
        if isinstance(value, int) and value > 0:
            return value
    return DEFAULT_MAX_NEW_TOKENS
