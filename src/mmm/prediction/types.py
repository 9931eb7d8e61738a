"""What a backend returns for one row."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Generation:
    text: str
    finish: str  # eos | newline | max_new_tokens
    new_tokens: int
