"""The ``llm`` settings (``mmm.config.LLMConfig``) and the API key, which never lives in them.

The key is read from ``OPENAI_API_KEY`` at the moment a client is built, so it cannot end up in
params, dvc.lock, logs or metrics.
"""

from __future__ import annotations

import os

from mmm.config import LLMConfig, Price
from mmm.errors import MMMError

API_KEY_ENV = "OPENAI_API_KEY"

__all__ = ["API_KEY_ENV", "LLMConfig", "LLMConfigError", "Price", "api_key_from_env"]


class LLMConfigError(MMMError, ValueError):
    """The LLM configuration cannot work (missing key or model, replay misses): nothing was sent."""


def api_key_from_env() -> str:
    """The API key, or a clear error that says how to provide it (and never echoes a value)."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise LLMConfigError(
            f"the openai backend needs ${API_KEY_ENV} in the environment (for a local server without "
            f"authentication, any value works, e.g. {API_KEY_ENV}=none); nothing was sent"
        )
    return key
