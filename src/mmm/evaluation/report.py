"""The paper's Table 1 as Markdown (this run beside the paper's models) and a PNG chart of F1.

PNG rather than Vega HTML: it renders offline, in a file browser, and in ``dvc plots``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mmm.evaluation.algorithm1 import LEVELS
from mmm.evaluation.audits import AUDITS
from mmm.io import atomic_path

MISSING = "–"


@lru_cache(maxsize=1)
def paper_table() -> dict[str, Any]:
    """``resources/paper_table1.yaml``: titles, orders and the paper's F1 per lang/dataset/model."""
    text = resources.files("mmm").joinpath("resources/paper_table1.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _cell(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}"


def _row(name: str, cells: list[str]) -> str:
    return "| " + " | ".join([name, *cells]) + " |"


def _header(columns: list[str]) -> list[str]:
    return [_row("Model", columns), "|" + "---|" * (len(columns) + 1)]


def _run_cells(result: dict[str, Any], lang: str, dataset: str) -> list[str]:
    figures = result["metrics"].get(lang, {}).get(dataset)
    if figures is None:
        return [MISSING] * len(LEVELS)
    return [_cell(figures.get(level)) for level in LEVELS]


def _paper_models(cells: list[tuple[str, str]]) -> list[str]:
    """Paper models reported on any of these cells, in the paper's row order."""
    table = paper_table()["f1"]
    return [
        model
        for model in paper_table()["models"]
        if any(table.get(lang, {}).get(dataset, {}).get(model) is not None for lang, dataset in cells)
    ]


def _paper_cells(model: str, lang: str, dataset: str) -> list[str]:
    values = paper_table()["f1"].get(lang, {}).get(dataset, {}).get(model)
    return [MISSING] * len(LEVELS) if values is None else [_cell(v) for v in values]


def _table(result: dict[str, Any], name: str, cells: list[tuple[str, str]], titles: list[str]) -> list[str]:
    columns = [f"{title} {level}" for title in titles for level in LEVELS]
    lines = _header(columns)
    lines.append(_row(f"**{name}**", [c for lang, dataset in cells for c in _run_cells(result, lang, dataset)]))
    for model in _paper_models(cells):
        paper = [c for lang, dataset in cells for c in _paper_cells(model, lang, dataset)]
        lines.append(_row(f"{model} (paper)", paper))
    return lines


def _interval(figures: dict[str, Any], level: str) -> str:
    if level not in figures:
        return MISSING
    ci = figures.get("ci", {}).get(level)
    return f"{figures[level]:.2f}" + (f" [{ci['low']:.2f}, {ci['high']:.2f}]" if ci else "")


def markdown(result: dict[str, Any], model_name: str) -> str:
    """Table 1 layout: per language, rows = models, columns = TL/WL/ALL per sub-dataset."""
    spec = paper_table()
    lang_titles, dataset_titles = spec["titles"]["langs"], spec["titles"]["datasets"]
    metrics = result["metrics"]
    langs = [lang for lang in spec["lang_order"] if lang in metrics]
    lines = [
        f"# Table 1: F1 on the MMM test sets ({result['mode']} mode, target {result['target']})",
        "",
        f"{result['rows']} predictions from `{result.get('predictions', '?')}`. TL: text level, WL: word level, "
        "ALL: both right in one output; micro F1 in percent as in the paper (Section 5.2, Appendix C). "
        "Paper rows are the paper's Table 1, for comparison; "
        f"{MISSING} = not evaluated or not reported.",
    ]
    for lang in langs:
        if not any(dataset in metrics[lang] for half in spec["halves"] for dataset in half):
            continue  # TCONER only: it has its own table below
        lines += ["", f"## {lang_titles[lang]} ({lang})"]
        for half in spec["halves"]:
            lines += [""] + _table(result, model_name, [(lang, d) for d in half], [dataset_titles[d] for d in half])
    if any("TCONER" in metrics[lang] for lang in langs):
        tconer_langs = ["en", "ja", "zh"]  # the paper's TCONER table is ordered English, Japanese, Chinese
        lines += ["", "## TCONER", ""]
        cells = [(lang, "TCONER") for lang in tconer_langs]
        lines += _table(result, model_name, cells, [lang_titles[lang] for lang in tconer_langs])

    boot = result["bootstrap"]
    lines += ["", "## Confidence intervals", ""]
    if boot["samples"]:
        lines.append(
            f"F1 with {100 * boot['confidence']:.0f}% percentile bootstrap intervals "
            f"({boot['samples']} resamples of the rows, seed {boot['seed']})."
        )
    else:
        lines.append("Bootstrap intervals were turned off (`bootstrap_samples: 0`).")
    lines += ["", "| Language | Sub-dataset | n | TL | WL | ALL |", "|---|---|---|---|---|---|"]
    for lang in langs:
        for dataset, figures in metrics[lang].items():
            cells = [_interval(figures, level) for level in LEVELS]
            lines.append(f"| {lang} | {dataset_titles[dataset]} | {figures['n']} | " + " | ".join(cells) + " |")

    lines += ["", "## Audits", "", "Rows flagged per sub-dataset (first ids below the table)."]
    for name, meaning in AUDITS.items():
        lines.append(f"- `{name}`: {meaning}")
    lines += ["", "| Language | Sub-dataset | n | " + " | ".join(AUDITS) + " |", "|---|---|---|" + "---|" * len(AUDITS)]
    examples: list[str] = []
    for lang, by_dataset in result["audits"].items():
        for dataset, found in by_dataset.items():
            n = metrics[lang][dataset]["n"]
            counts = " | ".join(str(found[name]["count"]) for name in AUDITS)
            lines.append(f"| {lang} | {dataset_titles[dataset]} | {n} | {counts} |")
            for name in AUDITS:
                if found[name]["count"]:
                    ids = ", ".join(f"`{i}`" for i in found[name]["examples"])
                    examples.append(f"- {lang}/{dataset} `{name}` ({found[name]['count']}): {ids}")
    if examples:
        lines += ["", "<details><summary>Example ids per audit</summary>", "", *examples, "", "</details>"]
    return "\n".join(lines) + "\n"


def summary_line(result: dict[str, Any], out: str | Path) -> str:
    """One line for the end of a run: rows, groups, macro F1 per language, audit totals."""
    levels = [level for level in LEVELS if any(level in m for m in result["macro"].values())]
    macro = "; ".join(
        f"{lang} " + " ".join(f"{level} {m[level]:.2f}" for level in levels) for lang, m in result["macro"].items()
    )
    totals = {name: 0 for name in AUDITS}
    for by_dataset in result["audits"].values():
        for found in by_dataset.values():
            for name in AUDITS:
                totals[name] += found[name]["count"]
    flagged = ", ".join(f"{count} {name}" for name, count in totals.items() if count) or "none"
    groups = sum(len(m) for m in result["metrics"].values())
    return (
        f"evaluate: {result['rows']} rows in {groups} sub-dataset(s), "
        f"{result['mode']} mode, target {result['target']}; "
        f"macro F1 {macro}; audits: {flagged} -> {out}"
    )


def write_markdown(result: dict[str, Any], path: str | Path, model_name: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(markdown(result, model_name), encoding="utf-8")


def write_chart(result: dict[str, Any], path: str | Path, reference: str | None) -> None:
    """Grouped bars of TL/WL/ALL F1 per sub-dataset, one panel per language, with CI whiskers.

    ``reference`` marks that paper model's figures (``None``: no marks).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = paper_table()
    metrics = result["metrics"]
    langs = [lang for lang in spec["lang_order"] if lang in metrics]
    levels = [level for level in LEVELS if any(level in f for m in metrics.values() for f in m.values())]
    fig, axes = plt.subplots(len(langs) or 1, 1, figsize=(11, 3.4 * max(len(langs), 1)), squeeze=False)
    width = 0.8 / max(len(levels), 1)
    for ax, lang in zip(axes[:, 0], langs):
        datasets = list(metrics[lang])
        marked = False
        for i, level in enumerate(levels):
            xs = [j + (i - (len(levels) - 1) / 2) * width for j in range(len(datasets))]
            values = [metrics[lang][d].get(level, 0.0) for d in datasets]
            cis = [metrics[lang][d].get("ci", {}).get(level) for d in datasets]
            low = [v - c["low"] if c else 0.0 for v, c in zip(values, cis)]
            high = [c["high"] - v if c else 0.0 for v, c in zip(values, cis)]
            ax.bar(xs, values, width, label=level, yerr=[low, high], capsize=2, ecolor="dimgray")
            if reference:
                paper = [(x, spec["f1"].get(lang, {}).get(d, {}).get(reference)) for x, d in zip(xs, datasets)]
                marks = [(x, v[LEVELS.index(level)]) for x, v in paper if v is not None]
                if marks:
                    label = None if marked else f"{reference} (paper)"
                    ax.scatter(*zip(*marks), marker="D", s=22, color="crimson", zorder=3, label=label)
                    marked = True
        ax.set_xticks(range(len(datasets)))
        ax.set_xticklabels([f"{spec['titles']['datasets'][d]}\nn={metrics[lang][d]['n']}" for d in datasets])
        ax.set_ylim(0, 118)
        ax.set_yticks(range(0, 101, 20))
        ax.set_ylabel("F1 (%)")
        ax.set_title(spec["titles"]["langs"][lang], loc="left")
        ax.legend(loc="upper center", fontsize="small", ncol=len(levels) + 1, frameon=False)
    fig.suptitle(f"F1 by sub-dataset ({result['mode']} mode, target {result['target']}; whiskers: bootstrap CI)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
