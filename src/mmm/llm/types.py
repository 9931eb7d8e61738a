"""The values that cross the LLM layer's boundary: requests in, results out, failure reasons."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

# Failure reasons (LLMResult.error). Stages count rows by these, so they are a stable vocabulary.
RATE_LIMIT = "rate_limit"  # 429 after all retries
SERVER_ERROR = "server_error"  # 5xx after all retries
TIMEOUT = "timeout"  # no answer within timeout_s, after all retries
CONNECTION = "connection"  # refused / reset / cut mid-body, after all retries
EMPTY = "empty"  # the model answered with nothing (after retries)
# A greedy local model's empty answer, the same words whether generated now or replayed from the cache (a failed
# row's detail is part of a DVC output, so a replay must write the same bytes)
LOCAL_EMPTY_DETAIL = "the local model generated no text (a greedy answer, cached like any other)"
BAD_RESPONSE = "bad_response"  # the body was not a valid completion (e.g. truncated JSON)
CLIENT_ERROR = "client_error"  # 4xx other than 429: the request itself is wrong, not retried
AUTH = "auth"  # 401/403: the run stops sending
ABORTED = "aborted"  # never sent because a fatal error (auth, unknown model) stopped the run
BUDGET = "budget"  # never sent: max_requests or max_cost_usd reached; a rerun continues
BATCH_PENDING = "batch_pending"  # in a provider batch that has not finished; a rerun collects it
BATCH_FAILED = "batch_failed"  # the provider batch finished without an answer for this row

RETRYABLE = frozenset({RATE_LIMIT, SERVER_ERROR, TIMEOUT, CONNECTION, EMPTY, BAD_RESPONSE})
# Not failures: the prompt is not answered *yet* (stopped on purpose); a rerun answers it.
PENDING = frozenset({BUDGET, BATCH_PENDING})


@dataclass(frozen=True)
class GenParams:
    """Generation parameters; part of the cache key (see ``key_fields``)."""

    max_tokens: int = 256
    temperature: float = 0.0
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.stop, str) or not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", (self.stop,) if isinstance(self.stop, str) else tuple(self.stop))
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"GenParams.max_tokens must be a positive integer, got {self.max_tokens!r}")
        if self.temperature < 0:
            raise ValueError(f"GenParams.temperature must be >= 0, got {self.temperature!r}")
        if any(not s for s in self.stop):
            raise ValueError("GenParams.stop must not contain empty strings")

    def key_fields(self) -> dict:
        """The fields that identify a generation.

        The three original fields are always present; a field added later enters the key only
        when it differs from its default, so adding one does not invalidate committed caches.
        """
        core = {"max_tokens": self.max_tokens, "temperature": float(self.temperature), "stop": list(self.stop)}
        for f in fields(self):
            if f.name not in core and getattr(self, f.name) != f.default:
                core[f.name] = getattr(self, f.name)
        return core


@dataclass(frozen=True)
class LLMRequest:
    """One prompt to answer. ``id`` is the caller's row id and must be unique within a run.

    ``required_terms``: strings the answer must contain verbatim. Only a local backend run with a
    ``logits_hook`` acts on them (and then they enter the cache key); API backends ignore them,
    so the prompt itself should name them.
    """

    id: str
    prompt: str
    params: GenParams = GenParams()
    system: str | None = None
    required_terms: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"LLMRequest.id must be a non-empty string, got {self.id!r}")
        if not isinstance(self.prompt, str):
            raise ValueError(f"LLMRequest {self.id}: prompt must be a string")
        if not isinstance(self.required_terms, tuple):
            object.__setattr__(self, "required_terms", tuple(self.required_terms))

    def completion_prompt(self) -> str:
        """The single string sent to a plain-completion endpoint or a base model."""
        return f"{self.system}\n\n{self.prompt}" if self.system else self.prompt

    def chat_messages(self) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        return messages + [{"role": "user", "content": self.prompt}]


@dataclass
class LLMResult:
    """The outcome for one request: ``text`` on success, else ``error`` (a reason above) and ``detail``."""

    id: str
    text: str | None
    error: str | None
    cached: bool
    prompt_tokens: int
    completion_tokens: int
    detail: str | None = None
    finish_reason: str | None = None  # "stop" | "length" when known; "length" means the answer was cut
    stop_reason: str | None = None  # the stop string that ended a "stop" answer, when the server says (vLLM)

    @property
    def ok(self) -> bool:
        return self.text is not None

    @property
    def pending(self) -> bool:
        """Not answered yet because the run stopped on purpose (budget, batch still running)."""
        return self.error in PENDING


@dataclass(frozen=True)
class Completion:
    """A successful answer from a backend (or from the cache)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None
    stop_reason: str | None = None  # vLLM's stop_reason: the stop string that ended the answer (None: EOS or unknown)


@dataclass(frozen=True)
class Failure:
    """A failed attempt or a failed row: a reason from the vocabulary above plus a human detail."""

    reason: str
    detail: str = ""
    retry_after: float | None = None  # seconds the server asked us to wait, when it said

    @property
    def retryable(self) -> bool:
        return self.reason in RETRYABLE
