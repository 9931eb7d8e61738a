"""The LLM layer: one call, ``run_requests``, answers prompts from a cache or a backend.

Backends: ``openai`` (any OpenAI-compatible endpoint through the official client, online or via
the Batch API), ``local`` (an in-process transformers model) and ``replay`` (the cache only).
See ``runner.py`` for the flow, ``cache.py`` for what is stored, ``config.py`` for the knobs.

    import mmm.config
    from mmm.llm import GenParams, LLMConfig, LLMRequest, run_requests

    config = mmm.config.load("params.yaml").llm.with_flags(backend=cli_backend)  # None = keep params
    report = run_requests([LLMRequest(row_id, prompt, GenParams(max_tokens=200, stop=("\n\n",)))], config,
                          desc="translate en")
    for result in report.results.values():   # one per request id, in request order
        result.text or (result.error, result.detail)   # error: a reason from mmm.llm.types
    runlog.write(log_dir, "translate_en", {"llm": report.summary.to_metrics()})  # telemetry: the run log
    # a result with ``result.pending`` (budget reached, batch running) is not a failure: a rerun answers it

Raises ``LLMConfigError`` (missing key or model, replay misses: ``ReplayMissError``) before any
request is sent; server trouble never raises, it becomes failed results with reasons. SIGINT or
SIGTERM during an ``openai`` run is raised (``KeyboardInterrupt``, ``mmm.errors.Terminated``) only
after the requests in flight are answered and cached (``drain.py``).
"""

from mmm.llm.cache import ResponseCache, cache_key
from mmm.llm.config import LLMConfig, LLMConfigError, Price, api_key_from_env
from mmm.llm.local import LogitsHook
from mmm.llm.runner import (
    ReplayMissError,
    RunReport,
    RunSummary,
    new_budget,
    run_requests,
)
from mmm.llm.types import GenParams, LLMRequest, LLMResult

__all__ = [
    "GenParams",
    "LLMConfig",
    "LLMConfigError",
    "LLMRequest",
    "LLMResult",
    "LogitsHook",
    "Price",
    "ReplayMissError",
    "ResponseCache",
    "RunReport",
    "RunSummary",
    "api_key_from_env",
    "cache_key",
    "new_budget",
    "run_requests",
]
