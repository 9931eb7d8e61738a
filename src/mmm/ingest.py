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
from mmm.io import InputError, Problem, portable_path, write_json, write_jsonl

log = logging.getLogger(__name__)


def collect(cfg: IngestConfig, allow_network: bool) -> tuple[list[dict], list[dict], dict[str, int]]:
    """Return ``(sources, references, rows read per input)`` for the configured source."""
    if cfg.source == "sample":
        sources = [r for lang in cfg.langs for r in raw.load_sample(cfg.sample_dir, lang)]
        references = [r for lang in ("en", "zh") for r in raw.load_references(cfg.sample_dir, lang)]
        return sources, references, {portable_path(cfg.sample_dir): len(sources) + len(references)}
    if cfg.source == "files":
        parts = [(portable_path(path), raw.load_published_file(path)) for path in cfg.files]
    else:
        parts = [(s.name, raw.load_hub(s.id or str(s.path), s.split, allow_network, s.revision, s.data_files))
                 for s in cfg.hub]
    rows = merge_sources(parts)
    return [r for r in rows if r["lang"] in cfg.langs], [], {name: len(records) for name, records in parts}


def merge_sources(parts: list[tuple[str, list[dict]]]) -> list[dict]:
    """Concatenate the sources' records; an id given by two sources is an error naming both (all listed at once).

    The published train and test repositories together are the originals, so merging them must
    not let one row shadow another.
    """
    first: dict[str, tuple[str, int]] = {}
    problems: list[Problem] = []
    for name, records in parts:
        for number, record in enumerate(records, start=1):
            where = first.setdefault(record["id"], (name, number))
            if where != (name, number):
                problems.append(Problem(name, number, f"id {record['id']!r} also comes from {where[0]} (row {where[1]}); "
                                                      "ids must be unique across ingest sources"))
    if problems:
        raise InputError(problems)
    return [record for _, records in parts for record in records]


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
    if cfg.source == "hub" and not cfg.hub:
        raise ParamsError("ingest.source is 'hub' but ingest.hub is empty")
    targets = {"sources": cfg.sources, "references": cfg.references, "metrics": cfg.metrics}
    with publish.outputs(targets, inputs=cfg.files) as out:
        sources, references, read = collect(cfg, allow_network)
        write_jsonl(out["sources"], sources)
        write_jsonl(out["references"], references)
        metrics = {"source": cfg.source, "inputs": read, "sources": counts(sources), "references": counts(references)}
        write_json(out["metrics"], metrics)
    log.info("ingest: %d source rows, %d reference rows from %s", len(sources), len(references), cfg.source)
    return metrics
