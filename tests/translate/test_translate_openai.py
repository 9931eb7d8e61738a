"""The translate stage end to end through the real openai client against the fake server on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from fake_openai import Fault
from translate_fakes import (
    TEMPLATES,
    ReferenceTranslator,
    mapped_rows,
    read_jsonl,
    references,
    task_lines,
    write_jsonl,
)
from typer.testing import CliRunner

from configs import replace, settings, write_params
from mmm.cli import app
from mmm.errors import IncompleteRun
from mmm.translate import template as templates
from mmm.translate.run import translate_file
from mmm.translate.types import TranslateSettings

SETTINGS = settings({"templates": "prompts/translate"}, method="one_shot")  # the fake server answers one-shot prompts


@pytest.fixture
def en_rows(sample_dir):
    return mapped_rows(sample_dir, "en", per_dataset=3)  # 18 rows, every sub-dataset


@pytest.fixture
def files(tmp_path, sample_dir, en_rows):
    refs = write_jsonl(tmp_path / "references.jsonl", references(sample_dir, "en") + references(sample_dir, "zh"))
    return {
        "input": write_jsonl(tmp_path / "labels" / "en.jsonl", en_rows),
        "out": tmp_path / "translate" / "en.jsonl",
        "failed": tmp_path / "translate" / "en.failed.jsonl",
        "metrics": tmp_path / "metrics" / "translate_en.json",
        "references": refs,
        "logs": tmp_path / "logs",
    }


def run(files, config, settings: TranslateSettings = SETTINGS, to: str = "en", references: bool = True) -> dict:
    return translate_file(files["input"], to, files["out"], files["failed"], settings, config, files["metrics"],
                          files["references"] if references else None, log_dir=files.get("logs"))


def run_log(files) -> dict:
    """The run's telemetry (named after the metrics file, as the stage names it)."""
    return json.loads((files["logs"] / "translate_en.json").read_text(encoding="utf-8"))


def ids(path) -> list[str]:
    return [r["id"] for r in read_jsonl(path)]


def test_a_perfect_translator_keeps_every_row_with_reference_quality(fake_openai, openai_config, files, en_rows, sample_dir):
    fake_openai.answer = ReferenceTranslator(en_rows, references(sample_dir, "en"), "ja-en")
    metrics = run(files, openai_config)

    out = read_jsonl(files["out"])
    assert [r["id"] for r in out] == [r["id"] for r in en_rows] and read_jsonl(files["failed"]) == []
    refs = {r["id"]: r for r in references(sample_dir, "en")}
    assert all(r == refs[r["id"]] for r in out)  # exactly the reference records, lang en
    assert (metrics["input_rows"], metrics["translated"], metrics["failed"], metrics["retention"]) == (18, 18, 0, 1.0)
    assert metrics["by_dataset"]["TCREE"] == {"input": 3, "translated": 3, "failed": 0, "pending": 0, "failures": {}}
    assert (metrics["pending"], metrics["pending_reasons"]) == (0, {})
    overall = metrics["quality"]["all"]
    assert (overall["rows_scored"], overall["chrf"], overall["entity_match"], overall["entity_in_reference_text"]) == (18, 100.0, 1.0, 1.0)
    assert run_log(files)["llm"]["translate"]["sent"] == 18 and metrics["direction"] == "ja-en"
    assert json.loads(files["metrics"].read_text()) == metrics
    assert not {"llm", "tokens_per_translated_row", "requests_per_translated_row"} & set(metrics)  # telemetry: run log
    assert run_log(files)["requests_per_translated_row"] == 1.0 and "18 sent" in run_log(files)["summary"]
    # the prompt: the paper's constraints, the matching one-shot example, the mapped labels, never the reference
    prompt = fake_openai.calls[0].prompt
    source_input, source_output = task_lines(prompt)
    row = next(r for r in en_rows if r["input"] == source_input)
    assert source_output == row["output"] and "word for word" in prompt
    assert f"/{row['input'].rsplit('/', 1)[1]}\n" in prompt.split("Japanese input:")[1]  # example of the same task
    assert refs[row["id"]]["input"] not in prompt


def test_the_answer_lines_must_parse_and_keep_the_mapped_labels(fake_openai, openai_config, files, en_rows, sample_dir):
    wrong = {}

    def tamper(row_id: str, input_: str, output: str) -> tuple[str, str]:
        n = int(row_id.rsplit("-", 1)[1])
        if row_id.startswith("scnm") and n == 1:
            wrong[row_id] = "unparseable"
            return input_, output.replace("/NER/", " NER ")  # no task marker
        if row_id.startswith("scnm") and n == 2:
            wrong[row_id] = "label_changed"
            return input_, output.replace("Literature/", "Culture/", 1)
        if row_id.startswith("scpos-n") and n == 1:
            wrong[row_id] = "pair_count_changed"
            return input_, output.rsplit(":", 1)[0]
        if row_id.startswith("scpos-adj-") and n == 1:  # no /TASK on the input line: restored, counted, kept
            return input_.rsplit("/", 1)[0], output
        if row_id.startswith("scpos-rw") and n == 3:  # the one-shot example's translation, parroted
            wrong[row_id] = "copied_example"
            example = next(e for e in templates.load(TEMPLATES / "ja-en.txt").examples if e.source.dataset == "SCPOS-RW").answer
            return example.input, output
        if row_id.startswith("tcree") and n == 1:
            wrong[row_id] = "instruction_changed"
            task = input_.rsplit("/", 1)[1]
            other = "Event Extraction" if task == "Relation Extraction" else "Relation Extraction"
            return input_.replace(task, other), output.replace(task, other)
        return input_, output

    fake_openai.answer = ReferenceTranslator(en_rows, references(sample_dir, "en"), "ja-en", tamper)
    metrics = run(files, openai_config)

    failed = {r["id"]: r for r in read_jsonl(files["failed"])}
    assert {k: v["reasons"] for k, v in failed.items()} == {k: [v] for k, v in wrong.items()}
    assert failed["scnm-001"]["answer"].startswith("From 2023/04/01") and failed["scnm-001"]["detail"]
    assert failed["scnm-002"]["labels_lang"] == "en" and failed["scnm-002"]["lang"] == "ja"  # the input row, as read
    assert sorted(ids(files["out"]) + list(failed)) == sorted(r["id"] for r in en_rows)
    assert metrics["failures"] == {reason: 1 for reason in wrong.values()}
    assert metrics["quality"]["SCNM"]["rows_scored"] == 1 and metrics["repairs"] == {"task_word_added": 1}
    assert next(r for r in read_jsonl(files["out"]) if r["id"] == "scpos-adj-001")["input"].endswith("/Sentiment Adj")
    assert metrics["quality"]["SCNM"]["chrf_with_failures"] < metrics["quality"]["SCNM"]["chrf"] == 100.0


def test_a_fixed_parser_rereads_paid_answers_without_sending(fake_openai, openai_config, files, en_rows, sample_dir):
    fake_openai.answer = lambda prompt: "Some text./NER\nEnglish result:\nSociety/NER/"  # wrong marker
    first = run(files, openai_config)
    assert first["failures"] == {"unparseable": 18}
    sent = fake_openai.completion_calls
    second = run(files, openai_config)  # same answers, from the cache
    assert fake_openai.completion_calls == sent and run_log(files)["llm"]["translate"]["cache_hits"] == 18
    assert second["failures"] == {"unparseable": 18}


def test_server_faults_fail_rows_with_reasons_and_a_rerun_sends_only_those(fake_openai, openai_config, files, en_rows, sample_dir):
    fake_openai.answer = ReferenceTranslator(en_rows, references(sample_dir, "en"), "ja-en")
    broken = {r["input"]: fault for r, fault in zip(en_rows[::6], (Fault.SERVER_ERROR, Fault.TRUNCATED, Fault.EMPTY))}
    fake_openai.faults = lambda call: broken.get(task_lines(call.prompt)[0])
    first = run(files, openai_config)
    assert first["failures"] == {"llm_server_error": 1, "llm_bad_response": 1, "llm_empty": 1}
    assert first["translated"] == 15 and len(read_jsonl(files["failed"])) == 3
    assert all(r["detail"] for r in read_jsonl(files["failed"]))

    fake_openai.faults = None
    before = fake_openai.completion_calls
    second = run(files, openai_config)
    assert fake_openai.completion_calls - before == 3  # only the failed rows went out again
    assert second["translated"] == 18 and read_jsonl(files["failed"]) == []
    assert run_log(files)["llm"]["translate"]["cache_hits"] == 15


def test_a_budget_stop_leaves_rows_pending_and_a_rerun_sends_only_those(fake_openai, openai_config, files, en_rows,
                                                                        sample_dir):
    fake_openai.answer = ReferenceTranslator(en_rows, references(sample_dir, "en"), "ja-en")
    with pytest.raises(IncompleteRun) as stopped:
        run(files, replace(openai_config, max_requests=5, concurrency=1))
    assert stopped.value.exit_code == 75
    assert "13 of 18 rows pending: 13 not sent, the budget (llm.max_requests=5) was reached" in str(stopped.value)
    assert "rerun to continue" in stopped.value.lines()[-1]
    metrics = json.loads(files["metrics"].read_text())  # written before the stop
    assert (metrics["translated"], metrics["failed"], metrics["pending"]) == (5, 0, 13)
    assert metrics["pending_reasons"] == {"budget": 13} and metrics["failures"] == {}
    assert sum(c["pending"] for c in metrics["by_dataset"].values()) == 13
    out = read_jsonl(files["out"])
    assert len(out) == 5 and read_jsonl(files["failed"]) == []  # pending rows are in neither file
    refs, by_input = {r["id"]: r for r in references(sample_dir, "en")}, {r["input"]: r["id"] for r in en_rows}
    answered = {by_input[task_lines(prompt)[0]] for prompt in fake_openai.answered}
    assert {r["id"] for r in out} == answered and all(r == refs[r["id"]] for r in out)  # real answers only
    assert run_log(files)["llm"]["translate"]["budget_stopped"] is True

    before = fake_openai.completion_calls
    second = run(files, openai_config)
    assert fake_openai.completion_calls - before == 13 and run_log(files)["llm"]["translate"]["cache_hits"] == 5
    assert (second["translated"], second["pending"]) == (18, 0) and read_jsonl(files["failed"]) == []
    assert sorted(ids(files["out"])) == sorted(r["id"] for r in en_rows)
    assert sum(fake_openai.answered.values()) == 18  # no row answered twice


def test_a_budget_stop_keeps_real_failures_apart_from_pending_rows(fake_openai, openai_config, files, en_rows,
                                                                   sample_dir):
    fake_openai.answer = ReferenceTranslator(en_rows, references(sample_dir, "en"), "ja-en")
    fake_openai.faults = lambda call: Fault.BAD_REQUEST if call.index == 1 else None  # 4xx: a real failure
    with pytest.raises(IncompleteRun):
        run(files, replace(openai_config, max_requests=4, concurrency=1))
    metrics = json.loads(files["metrics"].read_text())
    assert (metrics["translated"], metrics["failed"], metrics["pending"]) == (3, 1, 14)
    assert metrics["failures"] == {"llm_client_error": 1}
    failed = read_jsonl(files["failed"])
    assert [r["reasons"] for r in failed] == [["llm_client_error"]]
    assert len(ids(files["out"])) + len(failed) + metrics["pending"] == len(en_rows)
    assert not set(ids(files["out"])) & {r["id"] for r in failed}


def test_pending_batches_stop_the_run_and_a_later_run_collects(fake_openai, openai_config, files, en_rows, sample_dir):
    fake_openai.answer = ReferenceTranslator(en_rows, references(sample_dir, "en"), "ja-en")
    config = replace(openai_config, batch=True)
    with pytest.raises(IncompleteRun) as stopped:
        run(files, config)
    assert "18 waiting on Batch API results (1 batch(es) still running)" in str(stopped.value)
    assert read_jsonl(files["out"]) == [] and read_jsonl(files["failed"]) == []
    assert json.loads(files["metrics"].read_text())["pending_reasons"] == {"batch_pending": 18}
    with pytest.raises(IncompleteRun):  # still running: nothing is submitted twice
        run(files, config)
    assert len(fake_openai.batches) == 1

    fake_openai.complete_batches()
    metrics = run(files, config)
    assert (metrics["translated"], metrics["pending"]) == (18, 0) and len(fake_openai.batches) == 1
    assert fake_openai.completion_calls == 18  # every row answered once, through the batch


def test_tconer_labels_are_translated_by_the_model_with_the_same_number_of_pairs(fake_openai, openai_config, tmp_path):
    rows = [
        {"id": "t1", "lang": "en", "dataset": "TCONER", "input": "Ada Lovelace wrote notes on the Analytical Engine./NER",
         "output": "computing/NER/:person;Ada Lovelace:machine;Analytical Engine"},
        {"id": "t2", "lang": "en", "dataset": "TCONER", "input": "Mount Kenya is in Kenya./NER",
         "output": "geography/NER/:mountain;Mount Kenya:country;Kenya"},
        {"id": "t3", "lang": "en", "dataset": "TCONER", "input": "Bach lived in Leipzig./NER",
         "output": "music/NER/:composer;Bach:city;Leipzig"},
    ]
    answers = {
        "t1": "エイダ・ラブレスは解析機関について覚え書きを書いた。/NER\nJapanese output:\n計算機/NER/:人物;エイダ・ラブレス:機械;解析機関",
        "t2": "ケニア山はケニアにある。/NER\nJapanese output:\n地理/NER/:山;ケニア山",  # a pair lost
        "t3": "バッハはライプツィヒに住んだ。/NER\nJapanese output:\n音楽/NER/:作曲家;バッハ:都市/町;ライプツィヒ",  # '/' in a label
    }
    by_input = {r["input"]: answers[r["id"]] for r in rows}
    fake_openai.answer = lambda prompt: by_input[task_lines(prompt)[0]]
    files = {"input": write_jsonl(tmp_path / "en.jsonl", rows), "out": tmp_path / "ja.jsonl",
             "failed": tmp_path / "ja.failed.jsonl", "metrics": tmp_path / "m.json", "references": None}
    metrics = run(files, openai_config, to="ja", references=False)

    assert read_jsonl(files["out"]) == [{"id": "t1", "lang": "ja", "dataset": "TCONER",
                                         "input": "エイダ・ラブレスは解析機関について覚え書きを書いた。/NER",
                                         "output": "計算機/NER/:人物;エイダ・ラブレス:機械;解析機関"}]
    assert {r["id"]: r["reasons"] for r in read_jsonl(files["failed"])} == {"t2": ["pair_count_changed"],
                                                                          "t3": ["unparseable"]}
    assert "quality" not in metrics and metrics["direction"] == "en-ja"
    assert "Translate the text label and every entity label" in fake_openai.calls[0].prompt


def test_the_key_never_reaches_outputs_metrics_cache_or_logs(fake_openai, openai_config, openai_env, files, en_rows,
                                                            sample_dir, tmp_path, caplog):
    fake_openai.answer = ReferenceTranslator(en_rows, references(sample_dir, "en"), "ja-en")
    with caplog.at_level("DEBUG"):
        assert run(files, openai_config)["translated"] == 18  # answers in the cache, rows in OUT, metrics
        fake_openai.faults = lambda call: Fault.UNAUTHORIZED  # the server echoes the key in its message
        failed_files = dict(files, out=tmp_path / "second" / "en.jsonl", failed=tmp_path / "second" / "en.failed.jsonl")
        run(failed_files, replace(openai_config, concurrency=1, cache_dir=str(tmp_path / "empty-cache")))
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert failed_files["failed"] in written and any(p.suffix == ".jsonl" and "llm-cache" in str(p) for p in written)
    for path in written:
        assert openai_env not in path.read_text(encoding="utf-8", errors="replace"), path
    assert openai_env not in caplog.text
    assert {tuple(r["reasons"]) for r in read_jsonl(failed_files["failed"])} == {("llm_auth",), ("llm_aborted",)}
    assert "***" in read_jsonl(failed_files["failed"])[0]["detail"] + read_jsonl(failed_files["failed"])[1]["detail"]


def test_cli_translates_and_reports_a_missing_key_before_any_request(fake_openai, openai_env, files, en_rows, sample_dir,
                                                                     tmp_path, monkeypatch, root):
    fake_openai.answer = ReferenceTranslator(en_rows, references(sample_dir, "en"), "ja-en")
    params = write_params(tmp_path / "params.yaml", translate={"method": "one_shot"}, logs={"dir": str(tmp_path / "logs")},
                          llm={"backend": "openai", "model": "fake-model", "api": "completions", "max_retries": 0,
                               "progress": False})
    args = ["translate", str(files["input"]), "--to", "en", "--out", str(files["out"]), "--failed", str(files["failed"]),
            "--metrics", str(files["metrics"]), "--references", str(files["references"]), "--params", str(params),
            "--base-url", fake_openai.base_url, "--cache-dir", str(tmp_path / "cache")]
    monkeypatch.delenv("OPENAI_API_KEY")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "OPENAI_API_KEY" in result.output and fake_openai.completion_calls == 0
    assert "Traceback" not in result.output

    monkeypatch.setenv("OPENAI_API_KEY", openai_env)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "translate ja-en (one_shot): 18 rows -> 18 translated, 0 failed; chrF 100.0" in result.output
    assert "llm" not in json.loads(files["metrics"].read_text())
    assert fake_openai.calls[0].endpoint == "/v1/completions"

    # a budget stop exits 75 (DVC locks nothing), every row accounted for; the rerun finishes with what is left
    budget = [*args[:-1], str(tmp_path / "cache-budget"), "--max-requests", "5"]
    sent = fake_openai.completion_calls
    result = CliRunner().invoke(app, budget)
    assert result.exit_code == 75 and "incomplete:" in result.output and "Traceback" not in result.output
    stopped = json.loads(files["metrics"].read_text())
    assert stopped["pending"] == 13 and stopped["translated"] + stopped["failed"] + stopped["pending"] == 18
    assert fake_openai.completion_calls - sent == 5
    result = CliRunner().invoke(app, budget[:-2])
    assert result.exit_code == 0, result.output
    assert json.loads(files["metrics"].read_text())["pending"] == 0 and fake_openai.completion_calls - sent == 18


def test_rows_whose_labels_are_not_mapped_are_refused_with_their_lines(fake_openai, openai_config, tmp_path, sample_dir):
    rows = mapped_rows(sample_dir, "zh", per_dataset=1)
    unmapped = {k: v for k, v in rows[0].items() if k != "labels_lang"}
    raw = [unmapped, rows[1], dict(rows[2], id=rows[1]["id"]), dict(rows[3], labels_lang="en"), {"id": "x"}]
    files = {"input": write_jsonl(tmp_path / "zh.jsonl", raw), "out": tmp_path / "o.jsonl", "failed": tmp_path / "f.jsonl",
             "metrics": tmp_path / "m.json", "references": None}
    with pytest.raises(ValueError) as error:
        run(files, openai_config, to="zh", references=False)
    message = str(error.value)
    assert len(error.value.lines()) == 4  # one line per bad row
    assert "zh.jsonl:1: SCNM labels are not mapped to zh: run `mmm label-map` first" in message
    assert f"zh.jsonl:3: duplicate id {rows[1]['id']!r} (first on line 2)" in message
    assert "zh.jsonl:4: labels are mapped to 'en', not to the target 'zh'" in message
    assert "zh.jsonl:5: missing field 'lang'; missing field 'dataset'; missing field 'input'; missing field 'output'" in message
    assert fake_openai.completion_calls == 0 and not files["out"].exists()
