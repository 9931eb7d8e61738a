"""``LLMConfig``: the ``llm`` params section, validated, with CLI flags layered on top.

The API key is deliberately *not* a field: it is read from ``OPENAI_API_KEY`` at the moment a
client is built, so it cannot end up in params, dvc.lock, logs or metrics.
"""

from __future__ import annotations

from mmm.errors import MMMError

import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

BACKENDS = ("openai", "local", "replay")
APIS = ("chat", "completions")
LOCAL_DTYPES = ("float32", "bfloat16", "float16")
API_KEY_ENV = "OPENAI_API_KEY"
SECRET_LOOKING_KEYS = ("api_key", "key", "token", "secret", "openai_api_key")


class LLMConfigError(MMMError, ValueError):
    """The LLM configuration cannot work (bad value, missing key, missing model): nothing was sent."""


@dataclass(frozen=True)
class Price:
    """USD per one million tokens."""

    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int, factor: float = 1.0) -> float:
        return factor * (prompt_tokens * self.input + completion_tokens * self.output) / 1e6


@dataclass
class LLMConfig:
    """Everything the LLM layer needs; one instance per run."""

    backend: str = "local"
    model: str = "gemma-3-270m"
    api: str = "completions"  # chat: messages (+ chat template locally); completions: one raw prompt
    base_url: str | None = None  # None: OPENAI_BASE_URL, else the OpenAI API
    cache_dir: str = "data/cache/llm"
    concurrency: int = 8
    requests_per_minute: float | None = None  # None or 0: unlimited
    tokens_per_minute: float | None = None
    max_retries: int = 4  # our retries; the openai client's own retries are switched off
    timeout_s: float = 60.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    batch: bool = False  # openai: use the provider's Batch API (asynchronous, cheaper)
    batch_wait_s: float = 0.0  # how long one run waits for its batches before leaving them pending
    batch_poll_s: float = 30.0
    batch_price_factor: float = 0.5  # batch price relative to the online price
    max_requests: int | None = None  # per run: prompts sent to the backend (retries not counted)
    max_cost_usd: float | None = None  # per run: hard ceiling on estimated spend
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    local_model_dir: str = "models/base/gemma-3-270m"
    local_batch_size: int = 8
    local_dtype: str = "float32"
    local_device: str = "cpu"
    local_threads: int | None = None  # torch CPU threads (None: torch's default, one per core)
    seed: int = 0  # local sampling seed (only matters when temperature > 0)
    replay_from: str = "local"  # replay: whose answers to read, "local" or "openai"
    progress: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.backend not in BACKENDS:
            problems.append(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.api not in APIS:
            problems.append(f"api must be one of {', '.join(APIS)}, got {self.api!r}")
        if self.replay_from not in ("local", "openai"):
            problems.append(f"replay_from must be 'local' or 'openai', got {self.replay_from!r}")
        if self.local_dtype not in LOCAL_DTYPES:
            problems.append(f"local_dtype must be one of {', '.join(LOCAL_DTYPES)}, got {self.local_dtype!r}")
        if not self.model:
            problems.append("model must be set")
        for name in ("concurrency", "local_batch_size"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("max_retries", "timeout_s", "backoff_base_s", "backoff_max_s", "batch_wait_s", "batch_poll_s"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("requests_per_minute", "tokens_per_minute", "max_requests", "max_cost_usd", "local_threads"):
            value = getattr(self, name)
            if value is not None and value < 0:
                problems.append(f"{name} must be >= 0 or null, got {value!r}")
        if not 0 < self.batch_price_factor <= 1:
            problems.append(f"batch_price_factor must be in (0, 1], got {self.batch_price_factor!r}")
        for model, price in (self.prices or {}).items():
            if not isinstance(price, dict) or set(price) != {"input", "output"}:
                problems.append(f"prices.{model} must have exactly 'input' and 'output' (USD per 1M tokens)")
        if problems:
            raise LLMConfigError("llm config: " + "; ".join(problems))

    @classmethod
    def from_params(cls, section: dict[str, Any] | None, **overrides: Any) -> "LLMConfig":
        """Build from the ``llm`` params section; ``overrides`` (CLI flags) win, ``None`` means "not given"."""
        section = dict(section or {})
        secrets = [k for k in section if k.lower() in SECRET_LOOKING_KEYS]
        if secrets:
            raise LLMConfigError(
                f"llm config: {', '.join(secrets)} must not be in params; the key comes only from ${API_KEY_ENV}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted((set(section) | set(overrides)) - known)
        if unknown:
            raise LLMConfigError(f"llm config: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        section.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**section)

    # Derived values -------------------------------------------------------------------------

    @property
    def family(self) -> str:
        """Which kind of producer made an answer; the first part of every cache key.

        Local transformers and an API serving "the same" model answer differently, and chat vs
        plain completion format the prompt differently, so neither may answer for the other.
        """
        producer = self.replay_from if self.backend == "replay" else self.backend
        return f"{producer}-{self.api}"

    def price(self) -> Price | None:
        entry = (self.prices or {}).get(self.model)
        return Price(float(entry["input"]), float(entry["output"])) if entry else None

    def limits_rate(self) -> bool:
        return bool(self.requests_per_minute) or bool(self.tokens_per_minute)

    def public_dict(self) -> dict[str, Any]:
        """The settings as plain data (for metrics and logs); never contains a secret."""
        return asdict(self)


def api_key_from_env() -> str:
    """The API key, or a clear error that says how to provide it (and never echoes a value)."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise LLMConfigError(
            f"the openai backend needs ${API_KEY_ENV} in the environment (for a local server without "
            f"authentication, any value works, e.g. {API_KEY_ENV}=none); nothing was sent"
        )
    return key
