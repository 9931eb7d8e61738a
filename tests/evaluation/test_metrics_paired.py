"""Paired bootstrap of A - B (`mmm evaluate A --against B`): same rows, same resamples, both models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from configs import make, write_params
from mmm.cli import app
from mmm.errors import DataError
from mmm.evaluation import compare, compare_files, evaluate
from mmm.evaluation.predictions import read

runner = CliRunner()
GOLD = "Society/NER/:Person;Ann:Person;Bob"
ANSWERS = ("Society/NER/:Person;Ann:Person;Bob", "Society/NER/:Person;Ann", "Nature/NER/", "Society/NER/:Person;Bob:Person;Ann",
           "Society/NER/:Person;Ann:Location;Bob")


def _rows(n: int = 400) -> list[dict]:
    """en/SCNM and zh/TCREE rows with a mix of right, partial and wrong predictions."""
    rows = [{"id": f"a{i}", "lang": "en", "dataset": "SCNM", "input": f"Ann met Bob ({i})./NER", "output": GOLD,
             "prediction": ANSWERS[(i * 7) % len(ANSWERS)]} for i in range(n)]
    rows += [{"id": f"z{i}", "lang": "zh", "dataset": "TCREE", "input": f"文{i}/Relation Extraction",
              "output": "政治/Relation Extraction/:a;隶属;b",
              "prediction": ["政治/Relation Extraction/:a;隶属;b", "政治/Relation Extraction/", ""][i % 3]} for i in range(n // 2)]
    return rows


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _emptied(rows: list[dict], every: int = 4) -> list[dict]:
    """``rows`` with the predictions of every ``every``-th row removed (a strictly worse model)."""
    return [{**r, "prediction": ""} if i % every == 0 else r for i, r in enumerate(rows)]


def _entries(result: dict) -> list[dict]:
    cells = [e[level] for by in result["cells"].values() for e in by.values() for level in result["levels"]]
    return cells + [m[level] for m in result["macro"].values() for level in result["levels"]]


def test_identical_models_differ_by_exactly_zero(tmp_path):
    a = read(_write(tmp_path / "a.jsonl", _rows(200)))
    result = compare(a, a.clone(), make("evaluate", bootstrap_samples=300, seed=0))
    assert result["levels"] == ["TL", "WL", "ALL"] and set(result["cells"]) == {"en", "zh"}
    entries = _entries(result)
    assert len(entries) == 12
    for e in entries:
        assert e["a"] == e["b"] and e["diff"] == 0.0
        assert e["ci"] == {"low": 0.0, "high": 0.0} and e["a_better"] == 0.0


def test_a_model_with_emptied_predictions_is_worse_with_an_interval_above_zero(tmp_path):
    rows = _rows(400)
    path_a, path_b = _write(tmp_path / "a.jsonl", rows), _write(tmp_path / "b.jsonl", _emptied(rows))
    config = make("evaluate", bootstrap_samples=500, seed=1)
    result = compare_files(path_a, path_b, config)
    assert (result["a"], result["b"], result["rows"]) == ("a.jsonl", "b.jsonl", 600)
    for e in _entries(result):
        assert e["diff"] > 0 and e["ci"]["low"] > 0 and e["ci"]["low"] <= e["diff"] <= e["ci"]["high"]
        assert e["a_better"] >= 0.99
    # The point figures are each model's own `evaluate` figures.
    alone_a, alone_b = evaluate(read(path_a), config)["metrics"], evaluate(read(path_b), config)["metrics"]
    for lang, by_dataset in result["cells"].items():
        for dataset, entry in by_dataset.items():
            assert entry["n"] == alone_a[lang][dataset]["n"]
            for level in ("TL", "WL", "ALL"):
                assert entry[level]["a"] == alone_a[lang][dataset][level]
                assert entry[level]["b"] == alone_b[lang][dataset][level]
    # The difference is paired: far narrower than the two models' own intervals side by side.
    scnm = result["cells"]["en"]["SCNM"]["WL"]
    own = alone_a["en"]["SCNM"]["ci"]["WL"]["high"] - alone_a["en"]["SCNM"]["ci"]["WL"]["low"]
    assert scnm["ci"]["high"] - scnm["ci"]["low"] < own
    # Swapping A and B flips the sign and (up to the draws, which follow the joint vectors' order) the interval.
    swapped = compare_files(path_b, path_a, config)["cells"]["en"]["SCNM"]["WL"]
    assert swapped["diff"] == -scnm["diff"] and swapped["a_better"] == 0.0
    assert swapped["ci"]["low"] == pytest.approx(-scnm["ci"]["high"], abs=1.0)
    assert swapped["ci"]["high"] == pytest.approx(-scnm["ci"]["low"], abs=1.0)


def test_same_seed_same_result_other_seed_other_interval(tmp_path):
    rows = _rows(100)
    a, b = read(_write(tmp_path / "a.jsonl", rows)), read(_write(tmp_path / "b.jsonl", _emptied(rows, 3)))
    first = compare(a, b, make("evaluate", bootstrap_samples=300, seed=5))
    assert json.dumps(first) == json.dumps(compare(a, b, make("evaluate", bootstrap_samples=300, seed=5)))
    other = compare(a, b, make("evaluate", bootstrap_samples=300, seed=6))
    assert other["cells"]["en"]["SCNM"]["WL"]["ci"] != first["cells"]["en"]["SCNM"]["WL"]["ci"]
    # Row order does not matter: the same rows shuffled give the same figures.
    shuffled = compare(a.reverse(), b, make("evaluate", bootstrap_samples=300, seed=5))
    assert shuffled["cells"] == first["cells"] and shuffled["macro"] == first["macro"]


def test_zero_samples_gives_points_without_intervals(tmp_path):
    rows = _rows(50)
    result = compare(read(_write(tmp_path / "a.jsonl", rows)), read(_write(tmp_path / "b.jsonl", _emptied(rows))),
                     make("evaluate", bootstrap_samples=0))
    assert all("ci" not in e and "a_better" not in e and e["diff"] > 0 for e in _entries(result))


def test_different_rows_are_a_data_error_naming_ids(tmp_path):
    rows = _rows(20)
    a = read(_write(tmp_path / "a.jsonl", rows))
    changed = [dict(r) for r in rows[1:]]  # a0 missing
    changed[2]["output"] = "Nature/NER/"  # a3's gold differs
    changed.append({**rows[0], "id": "extra"})  # only in B
    with pytest.raises(DataError) as caught:
        compare(a, read(_write(tmp_path / "b.jsonl", changed)), make("evaluate"))
    message = str(caught.value)
    assert "3 row(s) differ" in message
    assert "en/SCNM/a0 (only in A)" in message and "en/SCNM/a3 (gold output differs)" in message
    assert "en/SCNM/extra (only in B)" in message
    many = [{**r, "id": r["id"] + "x"} for r in rows]
    with pytest.raises(DataError, match=r"60 row\(s\) differ: .* and 55 more$"):
        compare(a, read(_write(tmp_path / "c.jsonl", many)), make("evaluate"))


def test_a_text_only_model_against_a_joint_one_compares_tl_only(tmp_path):
    rows = _rows(60)
    a = read(_write(tmp_path / "a.jsonl", [{**r, "target": "text_only"} for r in rows]))
    b = read(_write(tmp_path / "b.jsonl", [{**r, "target": "joint"} for r in _emptied(rows)]))
    result = compare(a, b, make("evaluate", bootstrap_samples=100))
    assert result["levels"] == ["TL"] and result["target"] == {"a": "text_only", "b": "joint"}
    assert set(result["cells"]["en"]["SCNM"]) == {"n", "TL"}


def test_cli_prints_the_table_and_writes_json_only_with_out(tmp_path):
    rows = _rows(100)
    path_a, path_b = _write(tmp_path / "a.jsonl", rows), _write(tmp_path / "b.jsonl", _emptied(rows))
    metrics = tmp_path / "metrics.json"
    params = str(write_params(tmp_path / "params.yaml", evaluate={
        "out": str(metrics), "report": str(tmp_path / "t.md"), "plot": str(tmp_path / "t.png"), "plot_data": str(tmp_path / "f1"),
        "bootstrap_samples": 200, "seed": 2}))
    result = runner.invoke(app, ["evaluate", str(path_a), "--against", str(path_b), "--params", params])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("compare: A=a.jsonl vs B=b.jsonl, 150 rows, target joint/joint")
    assert any(line.split()[:3] == ["en", "SCNM", "WL"] for line in lines)
    assert any(line.split()[:3] == ["zh", "macro(1)", "ALL"] for line in lines)
    assert len(lines) == 2 + 4 * 3  # header, columns, (2 cells + 2 macros) x 3 levels
    assert not metrics.exists()  # evaluate.out is the plain evaluation's, never the comparison's
    out = tmp_path / "cmp" / "paired.json"
    result = runner.invoke(app, ["evaluate", str(path_a), "--against", str(path_b), "--out", str(out), "--params", params])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8")) == compare_files(path_a, path_b, make("evaluate", bootstrap_samples=200, seed=2))
    bad = runner.invoke(app, ["evaluate", str(path_a), "--against", str(path_b), "--report", "x.md", "--params", params])
    assert bad.exit_code != 0 and "--against" in bad.output
