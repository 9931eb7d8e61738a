"""Anchored translation through the real openai client against the fake server, and its loaders."""

from __future__ import annotations

import json
import re

import pytest
from translate_fakes import consistent_en_rows, read_jsonl, references, write_jsonl

from configs import replace
from configs import settings as translate_settings
from mmm.errors import IncompleteRun
from mmm.records import Sample
from mmm.translate.anchor_prompts import AnchorConfigError, load_glossary, load_prompts
from mmm.translate.run import translate_file

EMPTY_GLOSSARY = "no-glossary"  # a directory without files: nothing pinned


def settings(tmp_path, **anchored):
    options = {"glossary": str(tmp_path / EMPTY_GLOSSARY), **anchored}
    return translate_settings({"method": "anchored", "anchored": options})


class AnchoredReference:
    """``answer(prompt)``: a perfect translator for anchored prompts, from the sample's references.

    A term prompt is answered with the reference entity at the same pair position; a text prompt
    with the reference text in which each reference entity is replaced by the translation the
    prompt's ``Terms:`` line gives (so glossary pins show up in the text, as a compliant model
    would write them). ``drop`` (source text -> term) leaves a term out of that row's first text
    answer; ``drop_after_reask`` leaves it out even when the prompt names it again.
    """

    def __init__(self, rows: list[dict], refs: list[dict]):
        ref = {r["id"]: Sample.from_record(r) for r in refs}
        self.terms: dict[str, str] = {}
        self.texts: dict[str, tuple[str, list[tuple[str, str]]]] = {}
        for row in rows:
            source, target = Sample.from_record(row), ref[row["id"]]
            pairs = list(zip(source.entities(), target.entities()))
            self.terms.update(pairs)
            self.texts[source.text] = (target.text, pairs)
        self.drop: dict[str, str] = {}
        self.drop_after_reask: dict[str, str] = {}
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        block = prompt.rsplit("\n\n", 1)[-1].split("\n")
        if not block[0].startswith("Terms: "):
            return " " + self.terms[block[0].split(": ", 1)[1]] + "\n"
        given = dict(t.split(" = ", 1) for t in block[0].removeprefix("Terms: ").split("; "))
        source_text = block[1].split(": ", 1)[1]
        text, pairs = self.texts[source_text]
        for source, reference in pairs:
            text = text.replace(reference, given[source])
        reasked = "must contain these exact terms" in prompt
        for drops in (self.drop_after_reask, {} if reasked else self.drop):
            if source_text in drops:
                text = text.replace(drops[source_text], "")
        return " " + text + "\n"


@pytest.fixture
def rows(sample_dir):
    return consistent_en_rows(sample_dir)


@pytest.fixture
def files(tmp_path, sample_dir, rows):
    return {
        "input": write_jsonl(tmp_path / "en.in.jsonl", rows),
        "out": tmp_path / "en.jsonl",
        "failed": tmp_path / "en.failed.jsonl",
        "metrics": tmp_path / "translate_en.json",
        "references": write_jsonl(tmp_path / "refs.jsonl", references(sample_dir, "en")),
        "logs": tmp_path / "logs",
    }


def run(files, config, settings_):
    return translate_file(files["input"], "en", files["out"], files["failed"], settings_, config, files["metrics"],
                          files["references"], log_dir=files["logs"])


def llm_log(files, name: str = "translate_en") -> dict:
    """The LLM steps' telemetry from the run log."""
    return json.loads((files["logs"] / f"{name}.json").read_text(encoding="utf-8"))["llm"]


def test_a_perfect_translator_keeps_every_row_with_one_request_per_distinct_entity(
        tmp_path, fake_openai, openai_config, files, rows, sample_dir):
    translator = fake_openai.answer = AnchoredReference(rows, references(sample_dir, "en"))
    metrics = run(files, openai_config, settings(tmp_path))

    refs = {r["id"]: r for r in references(sample_dir, "en")}
    out = read_jsonl(files["out"])
    assert len(rows) >= 10 and read_jsonl(files["failed"]) == []
    assert all(r == refs[r["id"]] for r in out) and len(out) == len(rows)
    assert metrics["quality"]["all"]["chrf"] == 100.0 and metrics["quality"]["all"]["entity_match"] == 1.0
    distinct = len({e for r in rows for e in Sample.from_record(r).entities()})
    assert metrics["method_stats"]["entities"]["distinct"] == distinct
    llm = llm_log(files)
    assert llm["entities"]["sent"] + metrics["method_stats"]["entities"]["as_is"] == distinct
    assert llm["text"]["sent"] == len(rows) and "reask" not in llm
    assert len(translator.prompts) == llm["entities"]["sent"] + len(rows)
    assert "llm" not in metrics and metrics["method_stats"]["entities"]["pending"] == 0


def test_one_budget_spans_terms_and_texts_and_pending_rows_wait_for_the_rerun(
        tmp_path, fake_openai, openai_config, files, rows, sample_dir):
    fake_openai.answer = AnchoredReference(rows, references(sample_dir, "en"))
    config = replace(openai_config, concurrency=1)
    run(files, replace(config, cache_dir=str(tmp_path / "probe-cache")), settings(tmp_path))
    term_prompts = fake_openai.completion_calls - len(rows)  # every prompt of the job: terms, then one text per row
    calls = fake_openai.completion_calls

    def stopped_run(max_requests: int) -> dict:
        nonlocal calls
        with pytest.raises(IncompleteRun) as stopped:
            run(files, replace(config, max_requests=max_requests), settings(tmp_path))
        assert stopped.value.exit_code == 75 and "rerun to continue" in str(stopped.value)
        sent, calls = fake_openai.completion_calls - calls, fake_openai.completion_calls
        assert sent == max_requests  # the texts step gets only what the terms step left of the budget
        metrics = json.loads(files["metrics"].read_text(encoding="utf-8"))
        assert len(read_jsonl(files["out"])) + len(read_jsonl(files["failed"])) + metrics["pending"] == len(rows)
        assert read_jsonl(files["failed"]) == [] and metrics["pending_reasons"] == {"budget": metrics["pending"]}
        return metrics

    terms_only = stopped_run(3)  # terms pending: every row waits, no text is sent
    assert terms_only["pending"] == len(rows) and terms_only["method_stats"]["entities"]["pending"] == term_prompts - 3
    two_texts = stopped_run(term_prompts - 3 + 2)  # the rest of the terms, then two texts
    assert (two_texts["translated"], two_texts["pending"]) == (2, len(rows) - 2)
    refs = {r["id"]: r for r in references(sample_dir, "en")}
    assert all(r == refs[r["id"]] for r in read_jsonl(files["out"]))

    done = run(files, config, settings(tmp_path))
    assert fake_openai.completion_calls - calls == len(rows) - 2  # only the unanswered texts went out
    assert (done["translated"], done["failed"], done["pending"]) == (len(rows), 0, 0)


def test_the_glossary_wins_over_the_model_and_is_never_sent(tmp_path, fake_openai, openai_config, files, rows, sample_dir):
    translator = fake_openai.answer = AnchoredReference(rows, references(sample_dir, "en"))
    entity = Sample.from_record(rows[0]).entities()[0]
    (tmp_path / "glossary").mkdir()
    (tmp_path / "glossary" / "ja-en.yaml").write_text(f"{entity}: Pinned Name\n", encoding="utf-8")
    metrics = run(files, openai_config, settings(tmp_path, glossary=str(tmp_path / "glossary")))

    assert not any(p.rsplit("\n", 2)[-2] == f"Japanese: {entity}" for p in translator.prompts)
    first = Sample.from_record(read_jsonl(files["out"])[0])
    assert "Pinned Name" in first.entities() and "Pinned Name" in first.text
    assert metrics["method_stats"]["entities"]["glossary"] == 1 and metrics["failed"] == 0


def test_an_api_answer_missing_terms_is_reasked_once_then_fails_with_the_missing_terms(
        tmp_path, fake_openai, openai_config, files, rows, sample_dir):
    translator = fake_openai.answer = AnchoredReference(rows, references(sample_dir, "en"))
    ref = {r["id"]: Sample.from_record(r) for r in references(sample_dir, "en")}
    fixed, lost = (Sample.from_record(rows[i]) for i in (0, 2))
    lost_term = ref[lost.id].entities()[0]
    translator.drop = {fixed.text: ref[fixed.id].entities()[0]}
    translator.drop_after_reask = {lost.text: lost_term}
    metrics = run(files, openai_config, settings(tmp_path))

    failed = read_jsonl(files["failed"])
    assert [r["id"] for r in failed] == [rows[2]["id"]]
    assert failed[0]["reasons"] == ["missing_terms"] and lost_term in failed[0]["detail"]
    assert rows[0]["id"] in {r["id"] for r in read_jsonl(files["out"])}
    assert llm_log(files)["reask"]["sent"] == 2 and metrics["method_stats"]["texts"]["reasked"] == 2
    assert metrics["failures"] == {"missing_terms": 1}

    no_reask = run(files, openai_config, settings(tmp_path, reask=False))
    assert no_reask["failures"] == {"missing_terms": 2} and "reask" not in llm_log(files)


def test_a_row_whose_reask_is_not_sent_yet_is_pending_not_missing_terms(
        tmp_path, fake_openai, openai_config, files, rows, sample_dir):
    translator = fake_openai.answer = AnchoredReference(rows, references(sample_dir, "en"))
    ref = {r["id"]: Sample.from_record(r) for r in references(sample_dir, "en")}
    row = Sample.from_record(rows[0])
    translator.drop = {row.text: ref[row.id].entities()[0]}  # the first answer lacks a term; the re-ask fixes it
    config = replace(openai_config, concurrency=1)
    run(files, replace(config, cache_dir=str(tmp_path / "probe-cache")), settings(tmp_path))
    every_prompt = fake_openai.completion_calls  # terms, texts and the one re-ask

    with pytest.raises(IncompleteRun):
        run(files, replace(config, max_requests=every_prompt - 1), settings(tmp_path))
    metrics = json.loads(files["metrics"].read_text(encoding="utf-8"))
    assert (metrics["translated"], metrics["failed"], metrics["pending"]) == (len(rows) - 1, 0, 1)
    assert row.id not in {r["id"] for r in read_jsonl(files["out"])} and read_jsonl(files["failed"]) == []

    before = fake_openai.completion_calls
    done = run(files, config, settings(tmp_path))
    assert fake_openai.completion_calls - before == 1 and done["translated"] == len(rows)


@pytest.mark.parametrize(("answer", "reason"), [("テスト", "entity_invalid"), ("a;b", "entity_invalid"),
                                                 ("one two three " * 8, "entity_overlong")])
def test_a_row_whose_entity_fails_is_kept_out_with_the_reason(tmp_path, fake_openai, openai_config, files, rows,
                                                             sample_dir, answer, reason):
    translator = AnchoredReference(rows, references(sample_dir, "en"))
    entity = Sample.from_record(rows[1]).entities()[0]

    def answer_fn(prompt: str) -> str:
        return answer if prompt.endswith(f"Japanese: {entity}\nEnglish:") else translator(prompt)

    fake_openai.answer = answer_fn
    metrics = run(files, openai_config, settings(tmp_path, term_max_tokens=6))  # the fake server honours max_tokens
    failed = {r["id"]: r for r in read_jsonl(files["failed"])}
    hit = [r["id"] for r in rows if entity in Sample.from_record(r).entities()]
    assert sorted(failed) == sorted(hit)
    assert all(r["reasons"] == [reason] and entity in r["detail"] for r in failed.values())
    assert metrics["failures"] == {reason: len(hit)} and metrics["translated"] == len(rows) - len(hit)


def test_prompt_files_and_glossaries_are_checked_on_load(tmp_path, root):
    for direction in ("ja-en", "ja-zh", "en-ja", "en-zh"):
        source, target = direction.split("-")
        prompts = load_prompts(root / "prompts" / "anchored", source, target)
        assert prompts.term_prompt("X").endswith(f"{prompts.source_name}: X\n{prompts.target_name}:")
        assert load_glossary(root / "data" / "glossary", source, target)

    bad = tmp_path / "glossary"
    bad.mkdir()
    (bad / "ja-en.yaml").write_text("東京: Tokyo\n大阪: 大阪\n", encoding="utf-8")
    with pytest.raises(AnchorConfigError, match=re.escape(f"{bad / 'ja-en.yaml'}: entry '大阪'")):
        load_glossary(bad, "ja", "en")
    (bad / "ja-zh.yaml").write_text("京都: 京;都\n", encoding="utf-8")
    with pytest.raises(AnchorConfigError, match="entry '京都'.*';'"):
        load_glossary(bad, "ja", "zh")
    assert load_glossary(bad, "en", "ja") == {}  # no file: nothing pinned

    text = (root / "prompts" / "anchored" / "ja-en.yaml").read_text(encoding="utf-8")
    prompts_dir = tmp_path / "prompts"
    prompts_dir.mkdir()
    (prompts_dir / "ja-en.yaml").write_text(text.replace("the proprietress Chiyo Murakami", "the proprietress"),
                                            encoding="utf-8")
    with pytest.raises(AnchorConfigError, match=r"text_examples\[0\]: term 'Chiyo Murakami' is not in its target"):
        load_prompts(prompts_dir, "ja", "en")
    (prompts_dir / "ja-zh.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(AnchorConfigError, match="its name is for ja -> zh"):
        load_prompts(prompts_dir, "ja", "zh")


def test_open_domain_rows_get_their_labels_translated_as_terms_too(tmp_path, fake_openai, openai_config):
    from tiny_model import sample_tconer

    rows = sample_tconer(langs=("en",))[:6]

    def answer(prompt: str) -> str:
        block = prompt.rsplit("\n\n", 1)[-1].split("\n")
        if block[0].startswith("Terms: "):
            given = [t.split(" = ", 1)[1] for t in block[0].removeprefix("Terms: ").split("; ")]
            return "、".join(given) + "について。\n"
        return f" 訳{block[0].split(': ', 1)[1]}\n"

    fake_openai.answer = answer
    source = write_jsonl(tmp_path / "tconer.jsonl", rows)
    metrics = translate_file(source, "ja", tmp_path / "ja.jsonl", tmp_path / "ja.failed.jsonl",
                             settings(tmp_path), openai_config, tmp_path / "m.json", log_dir=tmp_path / "logs")

    out = [Sample.from_record(r) for r in read_jsonl(tmp_path / "ja.jsonl")]
    assert len(out) == len(rows) and metrics["failed"] == 0
    for translated, original in zip(out, (Sample.from_record(r) for r in rows)):
        assert translated.lang == "ja" and translated.text_label == f"訳{original.text_label}"
        assert translated.word_labels() == [f"訳{label}" for label in original.word_labels()]
        assert translated.entities() == [f"訳{e}" for e in original.entities()]
        assert all(e in translated.text for e in translated.entities())
    labels = {label for r in rows for label in [Sample.from_record(r).text_label, *Sample.from_record(r).word_labels()]}
    assert metrics["method_stats"]["labels"]["distinct"] == len(labels)
    assert llm_log({"logs": tmp_path / "logs"}, "m")["labels"]["sent"] == len(labels)
