"""The retention funnel: known metrics files in, exact rows out; a missing file or key is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmm import config, funnel
from mmm.cli import app
from mmm.errors import DataError, MissingPathError, ParamsError

runner = CliRunner()

# Only the keys the funnel reads; the numbers differ at every stage so a wrong source shows.
METRICS = {
    "ingest": {"sources": {"ja": {"SCNM": 10, "total": 10}}},
    "tconer_convert": {"texts_written": 8},
    "tconer_label": {"labelled": 7},
    "label_map": {"langs": {"en": {"rows": 10}, "zh": {"rows": 9}}},
    "translate_en": {"translated": 9},
    "translate_zh": {"translated": 8},
    "translate_tconer_ja": {"translated": 6},
    "translate_tconer_zh": {"translated": 5},
    "filter_ja": {"kept": 10},
    "filter_en": {"kept": 8},
    "filter_zh": {"kept": 8},
    "filter_tconer_en": {"kept": 7},
    "filter_tconer_ja": {"kept": 6},
    "filter_tconer_zh": {"kept": 4},
    "dataset": {"table2": {lang: {"total": total} for lang, total in (("en", 15), ("ja", 16), ("zh", 11))}},
    "split": {"cells": {
        "en": {"SCNM": {"train": 5, "test": 3}, "TCONER": {"train": 4, "test": 2}},
        "ja": {"SCNM": {"train": 6, "test": 4}, "TCONER": {"train": 3, "test": 3}},
        "zh": {"SCNM": {"train": 4, "test": 4}, "TCONER": {"train": 2, "test": 1}},
    }},
}
# stage: (en, ja, zh). ja: its 10 originals are neither label-mapped nor translated (carried), TCONER adds
# 8 texts, 7 labelled, 6 translated, 6 kept; en: TCONER is not translated (its 7 labelled rows carry on).
EXPECTED = {
    "ingested": (18, 18, 18),
    "labelled": (17, 17, 16),
    "translated": (16, 16, 13),
    "filtered": (15, 16, 12),
    "released": (15, 16, 11),
    "train": (9, 9, 6),
    "test": (5, 7, 5),
}


@pytest.fixture
def project(tmp_path, root) -> Path:
    """The repository's params in ``tmp_path`` (its paths resolve there) with ``METRICS`` as its metrics files."""
    shutil.copy(root / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "metrics").mkdir()
    for name, data in METRICS.items():
        (tmp_path / "metrics" / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")
    return tmp_path


def test_rows_per_language_and_stage_from_the_metrics(project):
    rows = funnel.rows(config.load(project / "params.yaml"))
    expected = [
        {"lang": lang, "stage": stage, "order": order, "label": f"{lang} {order} {stage}", "rows": counts[i]}
        for i, lang in enumerate(("en", "ja", "zh"))
        for order, (stage, counts) in enumerate(EXPECTED.items(), start=1)
    ]
    assert rows == expected


def test_the_stage_reads_exactly_the_metrics_files_of_the_assembled_items(project):
    files = funnel.inputs(config.load(project / "params.yaml"))
    assert sorted(path.name for path in files) == sorted(f"{name}.json" for name in METRICS)


def test_cli_publishes_the_table(project):
    out = project / "plots" / "funnel.json"
    result = runner.invoke(app, ["funnel", "--out", str(out), "--params", str(project / "params.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output == (f"funnel: en 18 ingested, 15 released, 9 train, 5 test; ja 18 ingested, 16 released, 9 train, "
                             f"7 test; zh 18 ingested, 11 released, 6 train, 5 test -> {out}\n")
    table = json.loads(out.read_text(encoding="utf-8"))
    assert table == funnel.rows(config.load(project / "params.yaml"))
    assert out.read_text(encoding="utf-8").count("\n") == len(table) + 2  # a row per line between [ and ]


def test_a_missing_key_names_the_file_and_the_key(project):
    path = project / "metrics" / "split.json"
    path.write_text(json.dumps({"cells": {"en": {"SCNM": {"train": 5}}}}), encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{path}: no key 'cells\.en\.SCNM\.test' \(written by an older version"):
        funnel.rows(config.load(project / "params.yaml"))
    result = runner.invoke(app, ["funnel", "--out", str(project / "f.json"), "--params", str(project / "params.yaml")])
    assert result.exit_code == 1 and f"error: {path}: no key 'cells.en.SCNM.test'" in result.output
    assert "Traceback" not in result.output and not (project / "f.json").exists()


def test_a_missing_or_broken_file_is_named(project):
    translated = project / "metrics" / "translate_tconer_zh.json"
    translated.unlink()
    with pytest.raises(MissingPathError, match=rf"^{translated}: no such metrics file"):
        funnel.rows(config.load(project / "params.yaml"))
    translated.write_text("{", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{translated}: not valid JSON"):
        funnel.rows(config.load(project / "params.yaml"))


def test_an_item_whose_input_no_stage_writes_cannot_be_traced(project):
    params = config.load(project / "params.yaml")
    item = params.filter.items["en"].model_copy(update={"input": project / "elsewhere.jsonl"})
    broken = params.model_copy(update={"filter": params.filter.model_copy(update={"items": {**params.filter.items, "en": item}})})
    with pytest.raises(ParamsError, match=r"filter\.items\.en\.input: .*elsewhere\.jsonl comes from no stage the funnel knows"):
        funnel.rows(broken)


def test_the_paper_profile_traces_the_same_items_to_the_same_counts(project, root):
    """Sampled translations (10,000 rows) and a filter that waives its rules change counts, not where they are."""
    from mmm.profile import apply

    apply(root / "params" / "paper.yaml", project / "params.yaml")
    paper = config.load(project / "params.yaml")
    assert paper.translate.items["tconer_ja"].sample == {"TCONER": 10000}  # the profile was applied
    assert [row["rows"] for row in funnel.rows(paper)] == [counts[i] for i in range(3) for counts in EXPECTED.values()]
