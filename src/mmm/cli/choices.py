"""Choices of CLI options as enumerations, made from the config's own types, so ``--help`` lists them
and a typo is a usage error (exit 2) before any params are read."""

from __future__ import annotations

from enum import Enum
from typing import Any, get_args

from mmm import config


def _choices(name: str, literal: Any) -> type[Enum]:
    return Enum(name, {value: value for value in get_args(literal)}, type=str)  # type: ignore[return-value]


Lang = _choices("Lang", config.Lang)
Method = _choices("Method", config.Method)
Backend = _choices("Backend", config.Backend)
PredictBackend = _choices("PredictBackend", config.PredictBackend)
Mode = _choices("Mode", config.EvalMode)
Target = _choices("Target", config.EvalTarget)
Dtype = _choices("Dtype", config.Dtype)
Constrained = _choices("Constrained", config.Constrained)


def value(choice: Enum | None) -> Any:
    """The plain value of an optional choice (``None`` = flag not given)."""
    return None if choice is None else choice.value
InputFormat = Enum("InputFormat", {v: v for v in ("auto", "jsonl", "lines")}, type=str)  # mmm.extract_io.INPUT_FORMATS
