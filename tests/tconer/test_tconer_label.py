"""TCONER labelling through the real openai client, and the review -> overrides -> rerun loop."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from configs import write_params
from mmm.cli import app
from mmm.records import Sample
from mmm.tconer.label import LabelRules, label_problem, normalise_label

runner = CliRunner()


@pytest.mark.parametrize(
    "answer, label",
    [(' "Astronomy." ', "astronomy"), ("Home  Cooking!\nText: more", "home cooking"), ("«law»", "law"), ("", "")],
)
def test_normalise_label(answer, label):
    assert normalise_label(answer) == label


def test_label_problems():
    rules = LabelRules(max_words=3, max_chars=20)
    assert label_problem("", rules) == "empty_label"
    assert label_problem("a very long topic label here", rules) == "overlong_label"
    assert label_problem("music/film", rules) == "label_has_delimiter"
    assert label_problem("marine biology", rules) is None


def topic_for(prompt: str) -> str:
    """The fake model: a label from the last text's first word; every 7th text gets a rambling answer."""
    text = prompt.rsplit("Text: ", 1)[1].split("\nTopic:")[0]
    if len(text) % 7 == 0:
        return "This text is about many different things at once, really"
    return f' "{text.split()[0].strip(".,").title()} Topic." '


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_review_loop_end_to_end(tmp_path, sample_dir, fake_openai, openai_env):
    fake_openai.answer = topic_for
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text("labels: {}\ndrop: {}\n", encoding="utf-8")
    d = tmp_path
    tconer = {"source_files": [str(sample_dir / "pile-ner" / "tconer.json")], "overrides": str(overrides),
              "converted": str(d / "conv.jsonl"), "labelled": str(d / "en.jsonl"), "label_failed": str(d / "failed.jsonl"),
              "convert_metrics": str(d / "mc.json"), "label_metrics": str(d / "ml.json"), "review_sheet": str(d / "s.csv")}
    llm = {"backend": "openai", "model": "fake-model", "api": "chat", "base_url": fake_openai.base_url,
           "cache_dir": str(tmp_path / "cache"), "max_retries": 1, "backoff_base_s": 0.01, "progress": False}
    params = str(write_params(tmp_path / "params.yaml", tconer=tconer, llm=llm, logs={"dir": str(d / "logs")}))
    invoke("tconer", "convert", "--params", params)
    label_args = ["tconer", "label", "--params", params]
    invoke(*label_args)
    first = json.loads((d / "ml.json").read_text())
    records = [json.loads(line) for line in (d / "en.jsonl").read_text().splitlines()]
    failed = [json.loads(line) for line in (d / "failed.jsonl").read_text().splitlines()]
    assert first["input_rows"] == 64 == len(records) + len(failed)
    assert first["failures"] == {"overlong_label": len(failed)} and len(failed) > 0
    assert first["human_changed_labels"] == 0
    assert all(r["reasons"] == ["overlong_label"] for r in failed)
    for record in records:
        sample = Sample.from_record(record)  # a valid MMM record
        assert sample.text_label.endswith(" topic") and sample.text_label == sample.text_label.lower()
    sent = fake_openai.completion_calls

    # A reviewer exports the sheet, relabels one good row, rescues one failed row, drops one row.
    invoke("tconer", "review", "--params", params)
    with open(d / "s.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 64
    good, bad, dropped = records[0]["id"], failed[0]["id"], records[1]["id"]
    for row in rows:
        row["new_label"] = {good: "space science", bad: "travel"}.get(row["id"], "")
        row["drop"] = "duplicate of another text" if row["id"] == dropped else ""
    with open(d / "s.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert "2 relabelled, 1 dropped" in invoke("tconer", "apply-review", str(d / "s.csv"), "--params", params)

    invoke(*label_args)
    second = json.loads((d / "ml.json").read_text())
    assert fake_openai.completion_calls == sent  # every answer came from the cache
    assert second["human_changed_labels"] == 2 and second["human_rescued_rows"] == 1 and second["human_dropped_rows"] == 1
    assert second["labelled"] == first["labelled"] - 1 + 1
    by_id = {json.loads(line)["id"]: json.loads(line) for line in (d / "en.jsonl").read_text().splitlines()}
    assert by_id[good]["output"].startswith("space science/NER/")
    assert by_id[bad]["output"].startswith("travel/NER/") and dropped not in by_id


def test_apply_review_rejects_bad_cells(tmp_path):
    sheet = tmp_path / "s.csv"
    sheet.write_text("id,new_label,drop\na,music/film,\nb,rock,duplicate\n", encoding="utf-8")
    overrides = tmp_path / "o.yaml"
    params = write_params(tmp_path / "params.yaml", tconer={"overrides": str(overrides)})
    result = runner.invoke(app, ["tconer", "apply-review", str(sheet), "--params", str(params)])
    assert result.exit_code == 1
    assert f"{sheet}:2: a: new_label 'music/film': label_has_delimiter" in result.output
    assert f"{sheet}:3: b: fill new_label or drop, not both" in result.output
    assert not overrides.exists()


def test_a_budget_stop_leaves_texts_pending_and_a_rerun_labels_only_those(tmp_path, root, fake_openai, openai_config):
    from configs import replace
    from mmm.errors import IncompleteRun
    from mmm.tconer.run import run_label

    fake_openai.answer = topic_for
    rows = [{"id": f"t{i}", "text": f"Word{i} is a thing number {i}.", "pairs": [["thing", f"Word{i}"]]} for i in range(10)]
    converted = tmp_path / "conv.jsonl"
    converted.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text("labels: {t9: reviewed topic}\ndrop: {}\n", encoding="utf-8")  # t9 is not answered in run 1
    out, failed, metrics_path, logs = tmp_path / "en.jsonl", tmp_path / "failed.jsonl", tmp_path / "tconer_label.json", tmp_path / "logs"

    def label(config) -> dict:
        return run_label(converted, out, failed, metrics_path, config, root / "prompts" / "tconer" / "label.txt", overrides,
                         LabelRules(4, 40), 8, log_dir=logs)

    with pytest.raises(IncompleteRun) as stopped:
        label(replace(openai_config, max_requests=4, concurrency=1))
    assert stopped.value.exit_code == 75
    assert "6 of 10 texts pending: 6 not sent, the budget (llm.max_requests=4) was reached" in str(stopped.value)
    metrics = json.loads(metrics_path.read_text())
    labelled = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert (metrics["labelled"], metrics["failed"], metrics["pending"]) == (4, 0, 6) and failed.read_text() == ""
    assert labelled == ["t0", "t1", "t2", "t3"] and metrics["pending_reasons"] == {"budget": 6}
    assert "llm" not in metrics and json.loads((logs / "tconer_label.json").read_text())["llm"]["sent"] == 4

    before = fake_openai.completion_calls
    second = label(openai_config)
    assert fake_openai.completion_calls - before == 6  # only the unanswered texts
    assert (second["labelled"], second["pending"]) == (10, 0) and second["human_changed_labels"] == 1
    assert json.loads(out.read_text().splitlines()[-1])["output"].startswith("reviewed topic/NER/")
