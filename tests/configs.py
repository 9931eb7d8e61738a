"""Typed configs for tests: the repository's own params.yaml section, with overrides.

Code has no defaults (params.yaml is the only place a value is set), so a test starts from the
real params and changes what it needs; a test therefore also breaks when params.yaml does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mmm import config
from mmm.errors import ParamsError

ROOT = Path(__file__).resolve().parents[1]
PARAMS = config.load(ROOT / "params.yaml")
_CHECKPOINTS: list[Path] = []


def checkpoints_dir() -> str:
    """Where tests' training runs keep checkpoints unless a test says otherwise: one temporary
    folder per session, never the repository's ``checkpoints/`` (checkpoint folders carry their
    fingerprint, and a run removes its own once published, so tests do not meet each other's)."""
    import tempfile

    if not _CHECKPOINTS:
        _CHECKPOINTS.append(Path(tempfile.mkdtemp(prefix="mmm-test-checkpoints-")))
    return str(_CHECKPOINTS[0])


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in {"train_size", "prices", "by_direction", "checks", "items", "files"}:
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def make(section: str, **overrides: Any) -> Any:
    """``section`` (dotted, e.g. ``translate.max_tokens``) of params.yaml with ``overrides`` (``None`` allowed)."""
    current: Any = PARAMS
    for part in section.split("."):
        current = getattr(current, "validation" if part == "validate" else part)
    data = _merge(current.model_dump(by_alias=True), overrides)
    if section in ("train", "predict") and "checkpoints" not in overrides:
        data["checkpoints"] = checkpoints_dir()
    try:
        return type(current).model_validate(data)
    except ValidationError as exc:
        raise ParamsError.from_problems("params.yaml with test overrides", config.problems_of(exc, section)) from None


def settings(section: dict[str, Any] | None = None, method: str | None = None) -> Any:
    """``TranslateSettings`` from the translate section with ``section`` merged over it."""
    from mmm.translate.run import settings_for

    overrides = dict(section or {})
    if method:
        overrides["method"] = method
    return settings_for(make("translate", **overrides))


def write_params(path: Path, **sections: dict[str, Any]) -> Path:
    """A full params file at ``path``: the repository's (paths made absolute) with ``sections`` merged over it."""
    import yaml

    data = PARAMS.model_dump(mode="json", by_alias=True)
    data["train"]["checkpoints"] = data["predict"]["checkpoints"] = checkpoints_dir()
    for name, overrides in sections.items():
        data[name] = _merge(data[name], overrides)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def replace(obj: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` that also takes a config model (validated again, like params)."""
    import dataclasses

    if dataclasses.is_dataclass(obj):
        return dataclasses.replace(obj, **changes)
    return type(obj).model_validate({**obj.model_dump(), **changes})
