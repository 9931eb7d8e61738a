"""Ingest: gather the raw sources into one checked JSONL per role.

Outputs (under ``out_dir``): ``sources.jsonl`` (records to translate, Japanese by default),
``references.jsonl`` (reference translations, when the source has them) and a count summary.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmm import offline, raw
from mmm.io import write_json, write_jsonl

log = logging.getLogger(__name__)
SOURCES = ("sample", "files", "hub")


@dataclass
class IngestConfig:
    """The ``ingest`` params section."""

    source: str = "sample"
    sample_dir: str = "data/raw/sample"
    files: list[str] = field(default_factory=list)
    hub_ids: list[str] = field(default_factory=list)
    hub_split: str = "train"
    langs: list[str] = field(default_factory=lambda: ["ja"])
    allow_network: bool = False

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"ingest.source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.source == "files" and not self.files:
            raise ValueError("ingest.source is 'files' but ingest.files is empty")
        if self.source == "hub" and not self.hub_ids:
            raise ValueError("ingest.source is 'hub' but ingest.hub_ids is empty")

    @classmethod
    def from_params(cls, section: dict[str, Any], hub: dict[str, Any] | None = None) -> "IngestConfig":
        allow = bool((hub or {}).get("allow_network", False))
        return cls(**section, allow_network=allow)


def collect(cfg: IngestConfig) -> tuple[list[dict], list[dict]]:
    """Return ``(sources, references)`` for the configured source."""
    if cfg.source == "sample":
        sources = [r for lang in cfg.langs for r in raw.load_sample(cfg.sample_dir, lang)]
        references = [r for lang in ("en", "zh") for r in raw.load_references(cfg.sample_dir, lang)]
        return sources, references
    if cfg.source == "files":
        rows = [r for path in cfg.files for r in raw.load_published_file(path)]
    else:
        offline.allow_hub(cfg.allow_network)
        rows = [r for ds in cfg.hub_ids for r in raw.load_hub(ds, cfg.hub_split)]
    return [r for r in rows if r["lang"] in cfg.langs], []


def counts(records: list[dict]) -> dict[str, dict[str, int]]:
    """``{lang: {dataset: n}}`` with a ``total`` per language."""
    table: dict[str, Counter] = {}
    for r in records:
        table.setdefault(r["lang"], Counter())[r["dataset"]] += 1
    return {lang: {**dict(sorted(c.items())), "total": sum(c.values())} for lang, c in sorted(table.items())}


def run(cfg: IngestConfig, out_dir: str | Path, metrics_path: str | Path) -> dict:
    """Collect, write outputs and metrics, and return the metrics dict."""
    sources, references = collect(cfg)
    out = Path(out_dir)
    write_jsonl(out / "sources.jsonl", sources)
    write_jsonl(out / "references.jsonl", references)
    metrics = {"source": cfg.source, "sources": counts(sources), "references": counts(references)}
    write_json(metrics_path, metrics)
    log.info("ingest: %d source rows, %d reference rows from %s", len(sources), len(references), cfg.source)
    return metrics
