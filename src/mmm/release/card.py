"""The dataset card (``README.md`` of the release): Hugging Face YAML metadata, then prose with this build's numbers.

The YAML is ``huggingface_hub``'s ``DatasetCardData``: ``configs`` with the ``data_files`` of each split, ``language``,
``license``, ``task_categories``, ``size_categories``, ``pretty_name``. The prose is the template
``resources/release_card.md``; every number in it is read from a metrics file of the run (through
:class:`mmm.funnel.Metrics`, which names the file and key it misses), every other fact from ``release_data`` params.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from mmm import assemble, funnel
from mmm.config import Params, ReleaseDataConfig
from mmm.errors import DataError
from mmm.release.dataset import SPLITS, config_name

Counts = Mapping[str, Mapping[str, Mapping[str, int]]]  # lang -> dataset -> split -> rows
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))


def inputs(params: Params) -> list[Path]:
    """Every metrics file the card reads (the release_data stage's metrics deps in dvc.yaml)."""
    return list(dict.fromkeys([*funnel.inputs(params), params.ingest.metrics, params.funnel.out]))


def size_category(rows: int) -> str:
    """The hub's ``size_categories`` tag of a dataset of ``rows`` rows."""
    return next((tag for bound, tag in SIZE_CATEGORIES if rows < bound), "n>100M")


def configs(table: Counts) -> list[dict[str, Any]]:
    """``all`` (the default), one per language, one per cell; each split's files as a path or glob in the folder.

    A split without rows in a configuration is left out of it: it has no file (``datasets`` cannot read a Parquet
    file of no rows), and a glob that matches nothing would stop the configuration from loading."""

    def entry(name: str, pattern: str, cells: list[Mapping[str, int]], default: bool = False) -> dict[str, Any]:
        files = [{"split": split, "path": pattern.format(split=split)} for split in SPLITS
                 if any(cell[split] for cell in cells)]
        return {"config_name": name, **({"default": True} if default else {}), "data_files": files}

    found = [entry("all", "*/{split}.parquet", [cell for row in table.values() for cell in row.values()], default=True)]
    found += [entry(lang, f"{lang}-*/{{split}}.parquet", list(row.values())) for lang, row in table.items()]
    found += [entry(config_name(lang, ds), f"{config_name(lang, ds)}/{{split}}.parquet", [cell])
              for lang, row in table.items() for ds, cell in row.items()]
    return found


def metadata(cfg: ReleaseDataConfig, table: Counts) -> Any:
    """The card's YAML as ``DatasetCardData``."""
    from huggingface_hub import DatasetCardData

    total = sum(n for row in table.values() for cell in row.values() for n in cell.values())
    return DatasetCardData(
        pretty_name=cfg.pretty_name, language=list(table), license=cfg.license,
        multilinguality="multilingual" if len(table) > 1 else "monolingual",
        task_categories=list(cfg.task_categories), size_categories=[size_category(total)], tags=list(cfg.tags),
        configs=configs(table))


def markdown_table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _reasons(counts: Mapping[str, int]) -> str:
    """``reason n, ...`` of the nonzero counts, or ``none``."""
    return ", ".join(f"{reason} {n}" for reason, n in counts.items() if n) or "none"


def configs_table(table: Counts) -> str:
    def sums(cells: Iterable[Mapping[str, int]]) -> list[int]:
        cells = list(cells)
        return [sum(cell[split] for cell in cells) for split in SPLITS]

    rows = [["all", *sums(cell for row in table.values() for cell in row.values())]]
    rows += [[lang, *sums(row.values())] for lang, row in table.items()]
    rows += [[config_name(lang, ds), *(cell[split] for split in SPLITS)] for lang, row in table.items() for ds, cell in row.items()]
    return markdown_table(["configuration", *SPLITS], rows)


def _translation(metrics: funnel.Metrics, path: Path) -> str:
    """A translate item's direction, method, rows translated and failures by reason."""
    return (f"{metrics.get(path, 'direction')} ({metrics.get(path, 'method')}): {metrics.get(path, 'translated')} of "
            f"{metrics.get(path, 'input_rows')}, failed: {_reasons(metrics.get(path, 'failures'))}")


def parts_table(params: Params, metrics: funnel.Metrics) -> str:
    """One row per assembled filter item: where its rows come from, how the translation and the filter went."""
    rows = []
    for item in params.assemble.items:
        stream = funnel.stream(params, item)
        origin = "TCONER texts" if stream["ingested"][0] == params.tconer.convert_metrics else "MMM sources"
        translated = _translation(metrics, stream["translated"][0]) if "translated" in stream else "not translated"
        path = stream["filtered"][0]
        rows.append([item, params.filter.items[item].lang, origin, translated,
                     f"{metrics.get(path, 'kept')} of {metrics.get(path, 'input')}",
                     _reasons(metrics.get(path, "reasons")), _reasons(metrics.get(path, "waived"))])
    return markdown_table(["part", "lang", "from", "translation", "kept by the filter", "rejected by reason",
                           "waived (kept)"], rows)


def funnel_table(path: Path) -> str:
    """The funnel stage's plot data (a row per language and stage) as one row per language."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        by_lang: dict[str, dict[str, int]] = {}
        for row in rows:
            by_lang.setdefault(row["lang"], {})[row["stage"]] = row["rows"]
        table = [[lang, *(stages[stage] for stage in funnel.STAGES)] for lang, stages in by_lang.items()]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not the funnel stage's rows ({type(exc).__name__}: {exc}); rerun `dvc repro funnel`") from None
    return markdown_table(["lang", *funnel.STAGES], table)


def label_map_text(params: Params, metrics: funnel.Metrics, read: Sequence[Path]) -> str:
    path = params.label_map.metrics
    if path not in read:
        return "No part of this build passed it."
    langs = metrics.get(path, "langs")
    per_lang = "; ".join(f"{lang}: {row['distinct_text_labels']} text and {row['distinct_word_labels']} word labels"
                         for lang, row in langs.items())
    return f"Here {metrics.get(path, 'input_rows')} {metrics.get(path, 'source')} rows were mapped ({per_lang})."


def tconer_text(params: Params, metrics: funnel.Metrics, read: Sequence[Path], translator: str) -> str:
    convert, label = params.tconer.convert_metrics, params.tconer.label_metrics
    if convert not in read:
        return "Not part of this build."
    get = metrics.get
    return (f"English open-domain NER texts in the Pile-NER-type conversation format were grouped by text: "
            f"{get(convert, 'texts_written')} texts, {get(convert, 'pairs_kept')} (type, entity) pairs kept (problems: "
            f"{_reasons(get(convert, 'problems'))}). `{translator}` gave each text an open-domain text-level label: "
            f"{get(label, 'labelled')} labelled, {get(label, 'failed')} failed ({_reasons(get(label, 'failures'))}), "
            f"{get(label, 'distinct_labels')} distinct labels; human overrides changed {get(label, 'human_changed_labels')} "
            f"labels, rescued {get(label, 'human_rescued_rows')} rows and dropped {get(label, 'human_dropped_rows')}. "
            "The English rows were then translated into Japanese and Chinese and filtered like the others.")


def paper_url(paper: str) -> str:
    """A link for the paper id: arXiv ids to their abstract page, anything else as given."""
    return f"https://arxiv.org/abs/{paper.split(':', 1)[1]}" if paper.lower().startswith("arxiv:") else paper


def body(params: Params, cfg: ReleaseDataConfig, table: Counts, metrics: funnel.Metrics) -> str:
    """The card's Markdown below the YAML."""
    read = inputs(params)
    split = params.split.metrics
    leakage = metrics.get(split, "leakage")
    mode, leaked = leakage["mode"], leakage["test_text_in_train"]
    cells = sum(len(row) for row in table.values())
    train, test = (sum(cell[s] for row in table.values() for cell in row.values()) for s in SPLITS)
    template = Template(resources.files("mmm").joinpath("resources/release_card.md").read_text(encoding="utf-8"))
    first_lang = next(iter(table))
    return template.substitute(
        pretty_name=cfg.pretty_name, paper=cfg.paper, paper_url=paper_url(cfg.paper), translator=cfg.translator,
        summary=f"{len(table)} language(s) ({', '.join(table)}), {cells} sub-datasets, {train} train and {test} test rows",
        ingest_source=metrics.get(params.ingest.metrics, "source"),
        example_config=config_name(first_lang, next(iter(table[first_lang]))),
        configs_table=configs_table(table),
        label_map=label_map_text(params, metrics, read),
        tconer=tconer_text(params, metrics, read, cfg.translator),
        parts_table=parts_table(params, metrics),
        table2=assemble.table2_markdown(metrics.get(params.assemble.metrics, "table2")).split("\n", 2)[2].strip(),
        leakage=f"`{mode}`, {leaked} test text(s) trained on in another cell "
                f"{'dropped' if mode == 'drop' else 'kept in test'}",
        funnel_table=funnel_table(params.funnel.out),
        cross_lingual=metrics.get(split, "cross_lingual", "test_ids_trained_in_other_lang"),
        license=cfg.license,
        sources_table=markdown_table(["source", "used for", "licence"],
                                     [[s.name, s.used_for, s.license] for s in cfg.sources.values()]),
    )


def render(params: Params, cfg: ReleaseDataConfig, table: Counts, metrics: funnel.Metrics) -> str:
    """The whole card: ``---``, the YAML, ``---``, the Markdown."""
    return f"---\n{metadata(cfg, table).to_yaml()}\n---\n\n{body(params, cfg, table, metrics)}"
