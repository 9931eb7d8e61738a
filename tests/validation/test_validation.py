"""The Great Expectations gate: stored suites, loading guard, clean sample passes, every kind of bad row bites."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from configs import make, write_params
from mmm import config as mmm_config
from mmm.cli import app
from mmm.validation import runner, suites, views, waivers

SUITES = {suites.RECORDS_SUITE, suites.ENTITIES_SUITE, suites.SPLIT_SUITE}


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def clean(tmp_path_factory, sample_dir):
    """The sample as a released dataset (ja sources + en/zh references) and a text-disjoint split."""
    rows = [r for path in sorted(sample_dir.glob("ja/*.jsonl")) for r in read_jsonl(path)]
    rows += [r for path in sorted(sample_dir.glob("reference/*/*.jsonl")) for r in read_jsonl(path)]
    folder = tmp_path_factory.mktemp("clean")
    write_jsonl(folder / "mmm.jsonl", rows)

    def side(row: dict) -> str:
        text = row["input"].rsplit("/", 1)[0]
        return "test" if hashlib.md5(text.encode()).digest()[0] % 4 == 0 else "train"

    for name in ("train", "test"):
        write_jsonl(folder / f"{name}.jsonl", [r for r in rows if side(r) == name])
    return folder


def config(checks: dict, out: Path, first_ids: int = 5) -> runner.ValidateConfig:
    """The repository's validate section over ``checks``, writing under ``out``."""
    return make("validate", result_format="SUMMARY", first_ids=first_ids, checks=checks, reports=out / "reports",
                data_docs=out / "reports" / "data_docs", metrics=out / "validate.json", gate=out / "gate.json")


def gated(out: Path, **validate: object) -> dict:
    """``write_params`` sections for a validate run writing under ``out`` (train and predict check its gate)."""
    gate = str(out / "gate.json")
    return {"validate": {"reports": str(out / "r"), "data_docs": str(out / "docs"), "metrics": str(out / "m.json"),
                         "gate": gate, **validate}, "train": {"gate": gate}, "predict": {"gate": gate},
            "release_data": {"gate": gate}}


def test_stored_suites_are_exactly_what_the_builder_makes(root):
    for suite in suites.build_suites():
        stored = json.loads(suites.suite_path(root / "gx", suite.name).read_text(encoding="utf-8"))
        built = suites.suite_document(suite)
        assert stored["meta"]["view"] == built["meta"]["view"]
        assert [suites.expectation_signature(e) for e in stored["expectations"]] == [
            suites.expectation_signature(e) for e in built["expectations"]
        ], f"{suite.name}: gx/ is stale; run `mmm validate --write-suites`"
        assert stored == built


def test_every_rule_is_enforced_by_some_stored_expectation(root):
    rules = set()
    for name in SUITES:
        stored = json.loads(suites.suite_path(root / "gx", name).read_text(encoding="utf-8"))
        rules |= {e["meta"]["rule"] for e in stored["expectations"]}
    assert rules == set(suites.RULES)


def test_suites_load_with_every_stored_expectation(root):
    loaded = runner.load_suites(root / "gx", SUITES)
    for name, suite in loaded.items():
        stored = json.loads(suites.suite_path(root / "gx", name).read_text(encoding="utf-8"))["expectations"]
        assert len(suite.expectations) == len(stored), name
        assert sorted(e.expectation_type for e in suite.expectations) == sorted(e["type"] for e in stored)
    custom_types = {e.expectation_type for s in loaded.values() for e in s.expectations if "mmm" in type(e).__module__}
    assert len(custom_types) == 4


def test_a_suite_that_loses_expectations_on_load_is_refused(tmp_path, root):
    gx_dir = tmp_path / "gx"
    shutil.copytree(root / "gx", gx_dir)
    path = suites.suite_path(gx_dir, suites.SPLIT_SUITE)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["expectations"].append({"type": "expect_column_values_to_be_unregistered_thing", "kwargs": {"column": "id"}, "meta": {}})
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(runner.SuiteError, match="loaded 2 of 3 stored expectations.*expect_column_values_to_be_unregistered_thing"):
        runner.load_suites(gx_dir, {suites.SPLIT_SUITE})


def test_the_clean_sample_passes_and_writes_reports(clean, root, tmp_path):
    before = sorted(p.relative_to(root) for p in (root / "gx").rglob("*"))
    checks = {
        "dataset": {"files": {"mmm": str(clean / "mmm.jsonl")}, "suites": ["mmm_records", "mmm_entities"]},
        "split": {
            "files": {"train": str(clean / "train.jsonl"), "test": str(clean / "test.jsonl")},
            "suites": ["mmm_records", "mmm_entities", "mmm_split"],
        },
    }
    report = runner.run(config(checks, tmp_path))
    assert report.success, report.describe()
    assert report.rows == {"dataset": 756, "split": 756}
    assert len(report.outcomes) == 2 * 55 + 2
    results = json.loads((tmp_path / "reports" / "results.json").read_text(encoding="utf-8"))
    assert results["success"] is True and set(results["checks"]["split"]) == {"mmm_records", "mmm_entities", "mmm_split"}
    assert (tmp_path / "reports" / "data_docs" / "index.html").exists()
    assert list((tmp_path / "reports" / "data_docs" / "validations").rglob("*.html"))
    metrics = json.loads((tmp_path / "validate.json").read_text())
    assert metrics["failed"] == 0 and metrics["checks"]["dataset"] == {"rows": 756, "expectations": 55, "failed": 0, "unchecked": {}}
    assert metrics["waived"] == {} and results["waived"] == {}  # the default filter params waive nothing
    assert sorted(p.relative_to(root) for p in (root / "gx").rglob("*")) == before, "a run must not write into gx/"
    gate = json.loads((tmp_path / "gate.json").read_text(encoding="utf-8"))
    relative = {name: Path(os.path.relpath(clean / name, tmp_path)).as_posix() for name in ("mmm.jsonl", "train.jsonl", "test.jsonl")}
    assert gate == {"passed": True, "files": {relative[name]: hashlib.sha256((clean / name).read_bytes()).hexdigest()
                                              for name in sorted(relative)}}
    first = [(tmp_path / name).read_bytes() for name in ("reports/results.json", "gate.json")]
    runner.run(config(checks, tmp_path))
    # the same data, the same files (DVC outputs)
    assert [(tmp_path / name).read_bytes() for name in ("reports/results.json", "gate.json")] == first


RECORDS, ENTITIES = "mmm_records", "mmm_entities"
IN_SET = "expect_column_values_to_be_in_set"


def _bad_rows(clean_rows: list[dict]) -> dict[str, tuple[dict, tuple[str, str, str]]]:
    """kind -> (row, (suite, rule, expectation type)) for one bad row of each kind."""

    def first(lang: str, dataset: str) -> dict:
        return dict(next(r for r in clean_rows if r["lang"] == lang and r["dataset"] == dataset))

    en, zh, rw = first("en", "SCNM"), first("zh", "SCNM"), first("en", "SCPOS-RW")
    label = en["output"].split("/", 1)[0]
    word_label = en["output"].split("/NER/:", 1)[1].split(";", 1)[0]
    return {
        "residual_en": (
            {**rw, "id": "x1", "input": rw["input"].replace(" ", " 駅 ", 1)},
            (RECORDS, "residual_japanese", "expect_column_values_to_not_match_regex"),
        ),
        "residual_zh": (
            {**zh, "id": "x2", "input": "込" + zh["input"]},
            (RECORDS, "residual_japanese", "expect_column_values_to_have_no_residual_japanese"),
        ),
        "entity": (
            {**en, "id": "x3", "output": en["output"] + ":Location;Atlantis"},
            (ENTITIES, "entity_in_text", "expect_column_pair_values_to_be_entity_in_text"),
        ),
        "text_label": (
            {**en, "id": "x4", "output": "Gossip" + en["output"][len(label):]},
            (RECORDS, "label_inventory", IN_SET),
        ),
        "word_label": (
            {**en, "id": "x5", "output": en["output"].replace(f":{word_label};", ":Villain;", 1)},
            (ENTITIES, "label_inventory", IN_SET),
        ),
        "null": ({k: v for k, v in en.items() if k != "id"}, (RECORDS, "not_empty", "expect_column_values_to_not_be_null")),
        "empty_text": (
            {**en, "id": "x7", "input": "/NER", "output": label + "/NER/"},
            (RECORDS, "not_empty", "expect_column_value_lengths_to_be_between"),
        ),
        "duplicate_id": (dict(en), (RECORDS, "unique_id", "expect_compound_columns_to_be_unique")),
        "format": (
            {**en, "id": "x9", "output": en["output"].replace("/NER/:", "/NER/", 1)},
            (RECORDS, "format", "expect_multicolumn_values_to_be_valid_mmm_records"),
        ),
        "lang": ({**en, "id": "x10", "lang": "fr"}, (RECORDS, "known_values", IN_SET)),
    }


def test_each_kind_of_bad_row_fails_the_gate_naming_its_expectation(clean, root, tmp_path):
    clean_rows = read_jsonl(clean / "mmm.jsonl")
    bad = _bad_rows(clean_rows)
    write_jsonl(tmp_path / "mmm.jsonl", clean_rows + [row for row, _ in bad.values()])
    line_of = {kind: len(clean_rows) + n for n, kind in enumerate(bad, start=1)}
    train = read_jsonl(clean / "train.jsonl")
    leaked = {**train[0], "id": "leak-1"}  # a train text, under a new id, in test
    write_jsonl(tmp_path / "test.jsonl", read_jsonl(clean / "test.jsonl") + [leaked])
    checks = {
        "bad": {"files": {"mmm": str(tmp_path / "mmm.jsonl")}, "suites": ["mmm_records", "mmm_entities"]},
        "split": {"files": {"train": str(clean / "train.jsonl"), "test": str(tmp_path / "test.jsonl")}, "suites": ["mmm_split"]},
    }
    report = runner.run(config(checks, tmp_path, first_ids=20))
    assert not report.success
    failed = {(o.check, o.suite, o.rule, o.expectation.split("(")[0]): o for o in report.failures}
    expected = {("bad", *where) for _, where in bad.values()} | {
        ("split", "mmm_split", "split_disjoint", "expect_column_pair_values_to_be_disjoint_across_groups")
    }
    assert set(failed) == expected, report.describe()
    for kind, (_, where) in bad.items():
        outcome = failed[("bad", *where)]
        assert any(ident.endswith(f"(mmm:{line_of[kind]})") for ident in outcome.first_ids), (kind, outcome.describe())
        assert outcome.error is None
    split = failed[("split", "mmm_split", "split_disjoint", "expect_column_pair_values_to_be_disjoint_across_groups")]
    assert split.unexpected == 2 and {i.split(" ")[0] for i in split.first_ids} == {train[0]["id"], "leak-1"}
    results = json.loads((tmp_path / "reports" / "results.json").read_text(encoding="utf-8"))
    assert results["success"] is False
    gate = json.loads((tmp_path / "gate.json").read_text(encoding="utf-8"))
    assert gate["passed"] is False and set(gate["files"]) == {"mmm.jsonl", "test.jsonl", os.path.relpath(clean / "train.jsonl", tmp_path)}


def test_the_split_gate_catches_a_near_duplicate_by_width_or_whitespace(clean, tmp_path):
    train = read_jsonl(clean / "train.jsonl")
    full_width = {c: c + 0xFEE0 for c in range(0x21, 0x7F)}  # ASCII -> full-width forms, which NFKC folds back
    originals = [next(r for r in train if r["lang"] == lang) for lang in ("ja", "en")]
    near = []
    for n, row in enumerate(originals, start=1):
        text, instruct = row["input"].rsplit("/", 1)
        spaced = " ".join(text.translate(full_width))  # every character apart, every ASCII one full-width
        assert spaced != text
        near.append({**row, "id": f"near-{n}", "input": f"{spaced}/{instruct}"})
    write_jsonl(tmp_path / "test.jsonl", read_jsonl(clean / "test.jsonl") + near)
    checks = {"split": {"files": {"train": str(clean / "train.jsonl"), "test": str(tmp_path / "test.jsonl")}, "suites": ["mmm_split"]}}
    report = runner.run(config(checks, tmp_path, first_ids=10))
    [failure] = report.failures
    assert failure.rule == "split_disjoint" and failure.unexpected == 4, report.describe()
    assert {ident.split(" ")[0] for ident in failure.first_ids} == {"near-1", "near-2", *(r["id"] for r in originals)}


def test_cli_validate_fails_with_rule_count_and_ids(clean, root, tmp_path):
    rows = read_jsonl(clean / "train.jsonl")
    write_jsonl(tmp_path / "test.jsonl", rows[:3])
    checks = {"split": {"files": {"train": str(clean / "train.jsonl"), "test": str(tmp_path / "test.jsonl")}, "suites": ["mmm_split"]}}
    params = write_params(tmp_path / "params.yaml", **gated(tmp_path, first_ids=2, checks=checks))
    result = CliRunner().invoke(app, ["validate", "--params", str(params)])
    assert result.exit_code == 1
    assert "validate: FAILED: 1 of 2 expectations hold" in result.output
    assert "rule split_disjoint: expect_column_pair_values_to_be_disjoint_across_groups(leak_key, source): 6 of" in result.output
    assert f"first ids: {rows[0]['id']} (train:1), {rows[1]['id']} (train:2)" in result.output
    assert json.loads((tmp_path / "m.json").read_text())["failed"] == 1
    assert json.loads((tmp_path / "gate.json").read_text())["passed"] is False  # and still exit 1
    missing = CliRunner().invoke(app, ["validate", "--params", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 1 and "Traceback" not in missing.output
    assert f"error: {tmp_path / 'nope.yaml'}: no such params file" in missing.output


def test_params_errors_name_the_key():
    with pytest.raises(ValueError, match="validate.checks.x.suites: missing"):
        make("validate", checks={"x": {"files": {"a": "b"}}})
    with pytest.raises(ValueError, match="validate.result_format"):
        make("validate", checks={"x": {"files": {"a": "b"}, "suites": ["s"]}}, result_format="ALL")


def test_an_expectation_that_raised_counts_as_a_failure_with_its_message():
    item = {
        "success": False,
        "expectation_config": {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "idx"}, "meta": {"rule": "not_empty"}},
        "result": {},
        "exception_info": {"metric-id": {"raised_exception": True, "exception_message": 'column "idx" not found'}},
    }
    outcome = runner._outcome("dataset", "mmm_records", item, 5)
    assert not outcome.success
    assert outcome.describe() == (
        'dataset/mmm_records: rule not_empty: expect_column_values_to_not_be_null(idx): ERROR column "idx" not found'
    )


def test_a_missing_data_file_is_a_clean_error(root, tmp_path):
    checks = {"d": {"files": {"mmm": str(tmp_path / "absent.jsonl")}, "suites": ["mmm_records"]}}
    (tmp_path / "gate.json").write_text('{"passed": true, "files": {}}\n')  # left by an earlier run
    params = write_params(tmp_path / "params.yaml", **gated(tmp_path, checks=checks))
    result = CliRunner().invoke(app, ["validate", "--params", str(params)])
    assert result.exit_code == 1
    assert f"error: {tmp_path / 'absent.jsonl'} (source 'mmm') does not exist" in result.output
    assert not (tmp_path / "gate.json").exists()  # removed before the checks: a run that stops leaves no gate


def test_the_split_gate_follows_split_leakage(clean, tmp_path):
    """A text trained in one cell and tested in another fails ``drop`` and passes ``keep``; within a cell it fails both."""
    train = read_jsonl(clean / "train.jsonl")
    test = read_jsonl(clean / "test.jsonl")
    row = next(r for r in train if r["lang"] == "ja" and r["dataset"] == "SCPOS-Adj")
    other_cell = {**row, "id": "other-cell", "dataset": "SCPOS-N", "output": row["output"].replace("/Sentiment Adj/", "/Sentiment N/")}
    other_cell["input"] = row["input"].replace("/Sentiment Adj", "/Sentiment N")
    same_cell = {**row, "id": "same-cell"}
    for extra, expected in [(other_cell, {"drop": 2, "keep": None}), (same_cell, {"drop": 2, "keep": 2})]:
        write_jsonl(tmp_path / "test.jsonl", test + [extra])
        checks = {"split": {"files": {"train": str(clean / "train.jsonl"), "test": str(tmp_path / "test.jsonl")},
                            "suites": ["mmm_split"]}}
        for mode, unexpected in expected.items():
            report = runner.run(config(checks, tmp_path), mode)
            if unexpected is None:
                assert report.success, (extra["id"], mode, report.describe())
            else:
                [failure] = report.failures
                assert failure.rule == "split_disjoint" and failure.unexpected == unexpected, (extra["id"], mode)


def _with_rules(**rules: list[str]) -> dict[str, dict]:
    """The repository's filter items as params data, with ``rules`` for the named items."""
    items = {name: item.model_dump(mode="json") for name, item in make("filter").items.items()}
    return {name: {**item, "rules": rules.get(name, item["rules"])} for name, item in items.items()}


def _missing_entity(row: dict, entity: str) -> dict:
    """``row`` (an NER row) with one more entity, of a label it already uses, that is not in its text."""
    label = row["output"].split("/NER/:", 1)[1].split(";", 1)[0]
    return {**row, "id": f"{row['id']}-missing", "output": f"{row['output']}:{label};{entity}"}


def test_the_gate_follows_the_filter_rules_waived_for_the_japanese_originals(clean, tmp_path):
    """A ja row whose entity is not in its text fails by default and passes when filter.items.ja waives the rule;
    the same defect in an en row still fails, and the report says what was not checked."""
    clean_rows = read_jsonl(clean / "mmm.jsonl")
    ja, en = (next(r for r in clean_rows if r["lang"] == lang and r["dataset"] == "SCNM") for lang in ("ja", "en"))
    ja_bad, en_bad = _missing_entity(ja, "アトランティス"), _missing_entity(en, "Atlantis")
    write_jsonl(tmp_path / "ja.jsonl", clean_rows + [ja_bad])
    write_jsonl(tmp_path / "both.jsonl", clean_rows + [ja_bad, en_bad])
    paper = waivers.from_filter(mmm_config.FilterConfig.model_validate({"items": _with_rules(ja=[])}).items)
    assert {rule: w.record() for rule, w in paper.items()} == {"entity_in_text": {"langs": ["ja"], "filter_items": ["ja"]}}

    def gate(name: str, waived: dict) -> runner.Report:
        checks = {"d": {"files": {"mmm": str(tmp_path / name)}, "suites": ["mmm_entities"]}}
        return runner.run(config(checks, tmp_path / name.split(".")[0]), waived=waived)

    default = gate("ja.jsonl", {})
    [failure] = default.failures
    assert (failure.rule, failure.unexpected, failure.first_ids[0].split(" ")[0]) == ("entity_in_text", 1, ja_bad["id"])

    waived = gate("ja.jsonl", paper)
    assert waived.success, waived.describe()
    ja_entities = int((views.build({"mmm": tmp_path / "ja.jsonl"}, {"entities"})["entities"]["lang"] == "ja").sum())
    metrics = json.loads((tmp_path / "ja" / "validate.json").read_text(encoding="utf-8"))
    assert metrics["waived"] == {"entity_in_text": {"langs": ["ja"], "filter_items": ["ja"]}}
    assert metrics["checks"]["d"]["unchecked"] == {"entity_in_text": ja_entities} and ja_entities > 0
    results = json.loads((tmp_path / "ja" / "reports" / "results.json").read_text(encoding="utf-8"))
    assert results["waived"] == metrics["waived"]
    assert f"rule entity_in_text for lang ja (filter.items: ja): d {ja_entities} rows" in waived.describe()

    still = gate("both.jsonl", paper)
    [failure] = still.failures
    assert (failure.rule, failure.unexpected) == ("entity_in_text", 1), still.describe()
    assert [i.split(" ")[0] for i in failure.first_ids] == [en_bad["id"]]
    assert "where lang NOT_IN ['ja']" in failure.expectation


def test_cli_validate_reads_the_waivers_from_the_filter_params(clean, tmp_path):
    clean_rows = read_jsonl(clean / "mmm.jsonl")
    ja = next(r for r in clean_rows if r["lang"] == "ja" and r["dataset"] == "SCNM")
    write_jsonl(tmp_path / "mmm.jsonl", clean_rows + [_missing_entity(ja, "アトランティス")])
    checks = {"d": {"files": {"mmm": str(tmp_path / "mmm.jsonl")}, "suites": ["mmm_entities"]}}
    for rules, code in (([], 0), (["residual_japanese", "entity_not_in_text"], 1)):
        params = write_params(tmp_path / "params.yaml", filter={"items": _with_rules(ja=rules)}, **gated(tmp_path, checks=checks))
        result = CliRunner().invoke(app, ["validate", "--params", str(params)])
        assert result.exit_code == code, result.output
        assert ("not checked (waived by filter params): rule entity_in_text for lang ja" in result.output) == (code == 0)


def test_a_waiver_narrows_copies_of_the_expectations_of_its_rule_only(root):
    loaded = runner.load_suites(root / "gx", {suites.RECORDS_SUITE})[suites.RECORDS_SUITE]
    en_waived = waivers.from_filter(mmm_config.FilterConfig.model_validate(
        {"items": _with_rules(en=["entity_not_in_text"], ja=[], tconer_ja=[])}).items)
    assert {rule: w.record() for rule, w in en_waived.items()} == {  # residual Japanese never applies to ja
        "entity_in_text": {"langs": ["ja"], "filter_items": ["ja", "tconer_ja"]},
        "residual_japanese": {"langs": ["en"], "filter_items": ["en"]},
    }
    before = [suites.expectation_signature(e.configuration.to_json_dict()) for e in loaded.expectations]
    narrowed = [waivers.applied(e, en_waived) for e in loaded.expectations]
    assert [suites.expectation_signature(e.configuration.to_json_dict()) for e in loaded.expectations] == before
    residual = [(old, new) for old, new in zip(loaded.expectations, narrowed) if old.meta["rule"] == "residual_japanese"]
    assert [repr(new.row_condition) for _, new in residual] == [  # English: over no rows; Chinese: as stored
        "(lang == en AND lang NOT_IN (en))", "lang == zh", "(lang == en AND lang NOT_IN (en))", "lang == zh"]
    assert all(new.row_condition == old.row_condition for old, new in zip(loaded.expectations, narrowed)
               if old.meta["rule"] != "residual_japanese")
    [entity] = runner.load_suites(root / "gx", {suites.ENTITIES_SUITE})[suites.ENTITIES_SUITE].expectations[:1]
    assert repr(waivers.applied(entity, en_waived).row_condition) == "lang NOT_IN (ja)" and entity.row_condition is None
    assert set(waivers.FILTER_RULES) == set(mmm_config.CONTENT_RULES) and set(waivers.FILTER_RULES.values()) <= set(suites.RULES)
