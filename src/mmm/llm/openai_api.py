"""One attempt at one request through the real ``openai`` client, with its errors sorted into reasons.

Retries live in the runner, not in the client: the client's own ``max_retries`` is set to 0 so
attempts are never stacked (client retries x our retries), every attempt passes the rate
limiter, and the summary can count them.
"""

from __future__ import annotations

import email.utils
import re
import time
from typing import Any

from mmm.llm import types as t
from mmm.llm.config import LLMConfig, api_key_from_env
from mmm.llm.types import Completion, Failure, LLMRequest

SECRET_RE = re.compile(r"\bsk-[A-Za-z0-9_\-*.]{6,}")
FATAL = frozenset({t.AUTH})


def make_client(config: LLMConfig) -> Any:
    """An ``AsyncOpenAI`` for the configured endpoint; the key comes from the environment only."""
    from openai import AsyncOpenAI

    return AsyncOpenAI(
        api_key=api_key_from_env(),
        base_url=config.base_url or None,  # None: OPENAI_BASE_URL, else api.openai.com
        max_retries=0,
        timeout=config.timeout_s or None,
    )


def request_body(request: LLMRequest, config: LLMConfig) -> dict[str, Any]:
    """The JSON body for /v1/chat/completions or /v1/completions (also used for Batch API lines)."""
    params = request.params
    body: dict[str, Any] = {"model": config.model, "max_tokens": params.max_tokens, "temperature": params.temperature}
    if params.stop:
        body["stop"] = list(params.stop)
    if config.api == "chat":
        body["messages"] = request.chat_messages()
    else:
        body["prompt"] = request.completion_prompt()
    return body


def endpoint(config: LLMConfig) -> str:
    return "/v1/chat/completions" if config.api == "chat" else "/v1/completions"


async def complete(client: Any, request: LLMRequest, config: LLMConfig) -> Completion | Failure:
    """Send once; never raises for server or network trouble, returns a ``Failure`` instead."""
    body = request_body(request, config)
    try:
        if config.api == "chat":
            response = await client.chat.completions.create(**body)
        else:
            response = await client.completions.create(**body)
    except Exception as exc:  # sorted below; anything unexpected propagates
        return classify(exc)
    return parse_body(response.model_dump() if hasattr(response, "model_dump") else response)


def parse_body(body: dict[str, Any]) -> Completion | Failure:
    """A completion body (online response or Batch API line) -> text and usage, or why not."""
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"] if "message" in choice else choice["text"]
    except (KeyError, IndexError, TypeError):
        return Failure(t.BAD_RESPONSE, "the response has no choices[0] text")
    if not isinstance(text, str) or not text.strip():
        return Failure(t.EMPTY, "the model returned an empty answer")
    usage = body.get("usage") or {}
    return Completion(
        text=text,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason=choice.get("finish_reason"),
        stop_reason=choice.get("stop_reason") if isinstance(choice.get("stop_reason"), str) else None,
    )


def classify(exc: BaseException) -> Failure:
    """Map a client exception to a reason; 429/5xx/timeouts/connection/bad bodies are retryable."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return Failure(t.TIMEOUT, "no answer within the timeout")
    if isinstance(exc, openai.APIConnectionError):
        return Failure(t.CONNECTION, redact(str(exc)))
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = redact(f"HTTP {status}: {_message(exc)}")
        if status == 429:
            return Failure(t.RATE_LIMIT, detail, retry_after(exc.response.headers))
        if status >= 500 or status in (408, 409):
            return Failure(t.SERVER_ERROR, detail, retry_after(exc.response.headers))
        if status in (401, 403):
            return Failure(t.AUTH, detail)
        return Failure(t.CLIENT_ERROR, detail)
    if isinstance(exc, (openai.APIResponseValidationError, ValueError)):
        # includes json.JSONDecodeError from a truncated body and pydantic validation errors
        return Failure(t.BAD_RESPONSE, redact(f"{type(exc).__name__}: {exc}")[:300])
    raise exc


def retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), if present."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        return max(0.0, email.utils.mktime_tz(parsed) - time.time()) if parsed else None


def redact(text: str) -> str:
    """Drop anything that looks like a credential (providers echo masked keys in 401 messages)."""
    import os

    key = os.environ.get("OPENAI_API_KEY", "").strip()
    if len(key) >= 8:
        text = text.replace(key, "***")
    return SECRET_RE.sub("sk-***", text)


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(getattr(exc, "message", exc))
