"""The model card written next to the weights, and the loss curve (CSV for DVC plots, PNG for people).

The card says what a folder *is* without the repository at hand: the base model, the exact
training data (SHA-256 of the file and rows per language and sub-dataset), every training
param and the run's metrics, in the Hugging Face card layout (YAML front matter + Markdown).

Nothing written here depends on when or where it was written (no dates, no tool versions in the
PNG, paths relative to the working directory), so training twice gives the same bytes.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from mmm.io import portable_path

CURVE_FIELDS = ("step", "epoch", "loss", "learning_rate", "tokens")


def write_curve(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    from mmm.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CURVE_FIELDS)
        writer.writeheader()
        writer.writerows({k: row[k] for k in CURVE_FIELDS} for row in rows)


def plot_curve(path: str | Path, rows: Sequence[dict[str, Any]], title: str) -> None:
    """A PNG of loss by step (PNG because DVC's Vega HTML needs a CDN to render)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mmm.io import atomic_path

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], marker="." if len(rows) < 60 else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (answer tokens)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})  # no matplotlib version in the file
    plt.close(fig)


def data_summary(path: str | Path, records: Sequence[dict]) -> dict[str, Any]:
    from mmm.basemodel import sha256_file

    cells = Counter(f"{r['lang']}/{r['dataset']}" for r in records)
    return {"file": portable_path(path), "sha256": sha256_file(Path(path)), "rows": len(records), "rows_by_cell": dict(sorted(cells.items()))}


def write_model_card(out_dir: str | Path, *, base_model: str, base_info: dict[str, Any], data: dict[str, Any],
                     params: dict[str, Any], metrics: dict[str, Any]) -> None:
    meta = {
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "language": ["en", "ja", "zh"],
        "tags": ["information-extraction", "mutual-reinforcement-effect", "mmm", "oiellm"],
        "base_model": base_model,
    }
    target = params.get("target", "joint")
    lines = [
        "---",
        yaml.safe_dump(meta, allow_unicode=True, sort_keys=False).strip(),
        "---",
        "",
        "# OIELLM (MMM reproduction)",
        "",
        "An open-domain information extraction model fine-tuned on the multilingual MRE-mix (MMM) datasets",
        "(Gan et al., *Multilingual Mutual Reinforcement Effect Mix Datasets*). Built by the `train` stage of",
        "this repository's DVC pipeline; weights are safetensors with any LoRA adapter merged in.",
        "",
        "## Format",
        "",
        "Prompt = the record's `input` (text + `/` + instruction word) followed by one newline; the model",
        f"continues with the answer and EOS. Target `{target}`: "
        + {
            "joint": "`label/INSTRUCT/:type;entity...` (the paper's output).",
            "text_only": "`label/INSTRUCT/` (text-level label only; MRE ablation).",
            "word_only": "`/INSTRUCT/:type;entity...` (word-level pairs only; MRE ablation).",
        }[target],
        "",
        "```",
        'mmm extract "Marlon Brando starred in On the Waterfront." --task NER --model DIR',
        "```",
        "",
        "## Base model",
        "",
        f"- path: `{base_model}`",
        *[f"- {k}: `{v}`" for k, v in base_info.items()],
        "",
        "## Training data",
        "",
        f"- file: `{data['file']}` ({data['rows']} rows), sha256 `{data['sha256']}`",
        "- rows by language/sub-dataset: " + ", ".join(f"{k} {v}" for k, v in data["rows_by_cell"].items()),
        "",
        "## Training params",
        "",
        "```yaml",
        yaml.safe_dump(params, allow_unicode=True, sort_keys=False).strip(),
        "```",
        "",
        "## Training metrics",
        "",
        "```json",
        json.dumps(metrics, ensure_ascii=False, indent=2, default=str),
        "```",
        "",
    ]
    Path(out_dir, "README.md").write_text("\n".join(lines), encoding="utf-8")
