"""Ingest: gather the raw sources into one checked JSONL per role.

Outputs (paths in ``ingest``): the sources (records to translate, Japanese by default),
the references (reference translations, when the source has them) and a count summary.
"""

from __future__ import annotations

import logging
from collections import Counter

from mmm import publish, raw
from mmm.config import IngestConfig
from mmm.errors import ParamsError
from mmm.io import write_json, write_jsonl

log = logging.getLogger(__name__)


def collect(cfg: IngestConfig, allow_network: bool) -> tuple[list[dict], list[dict]]:
    """Return ``(sources, references)`` for the configured source."""
    if cfg.source == "sample":
        sources = [r for lang in cfg.langs for r in raw.load_sample(cfg.sample_dir, lang)]
        references = [r for lang in ("en", "zh") for r in raw.load_references(cfg.sample_dir, lang)]
        return sources, references
    if cfg.source == "files":
        rows = [r for path in cfg.files for r in raw.load_published_file(path)]
    else:
        rows = [r for ds in cfg.hub_ids for r in raw.load_hub(ds, cfg.hub_split, allow_network)]
    return [r for r in rows if r["lang"] in cfg.langs], []


def counts(records: list[dict]) -> dict[str, dict[str, int]]:
    """``{lang: {dataset: n}}`` with a ``total`` per language."""
    table: dict[str, Counter] = {}
    for r in records:
        table.setdefault(r["lang"], Counter())[r["dataset"]] += 1
    return {lang: {**dict(sorted(c.items())), "total": sum(c.values())} for lang, c in sorted(table.items())}


def run(cfg: IngestConfig, allow_network: bool) -> dict:
    """Collect; publish the sources, references and metrics as one set; return the metrics dict."""
    if cfg.source == "files" and not cfg.files:
        raise ParamsError("ingest.source is 'files' but ingest.files is empty")
    if cfg.source == "hub" and not cfg.hub_ids:
        raise ParamsError("ingest.source is 'hub' but ingest.hub_ids is empty")
    targets = {"sources": cfg.sources, "references": cfg.references, "metrics": cfg.metrics}
    with publish.outputs(targets, inputs=cfg.files) as out:
        sources, references = collect(cfg, allow_network)
        write_jsonl(out["sources"], sources)
        write_jsonl(out["references"], references)
        metrics = {"source": cfg.source, "sources": counts(sources), "references": counts(references)}
        write_json(out["metrics"], metrics)
    log.info("ingest: %d source rows, %d reference rows from %s", len(sources), len(references), cfg.source)
    return metrics
