"""Constrained local generation (mmm.translate.constrain) on a tiny random model: the guarantees hold
even for a model that knows nothing, which is the point of forcing."""

from __future__ import annotations

import pytest
from tiny_model import one_torch_thread, tiny_model_dir  # noqa: F401  (fixtures)
from translate_fakes import mapped_rows, read_jsonl, write_jsonl

from configs import make
from configs import settings as translate_settings
from mmm import filters
from mmm.llm import GenParams, LLMConfig, LLMRequest
from mmm.llm.local import LocalModel
from mmm.records import Sample
from mmm.translate.constrain import (
    AnchorHook,
    banned_pattern,
    build_vocab,
    repeated_ngram_tokens,
)
from mmm.translate.run import translate_file

TERMS = ("Yokohama City", "Kannai Station")


def config(tmp_path, model_dir) -> LLMConfig:
    return make("llm", backend="local", model="tiny", local_model_dir=str(model_dir), cache_dir=str(tmp_path / "cache"),
                     local_batch_size=4, progress=False, local_threads=1)


def requests(terms: tuple[str, ...], max_tokens: int = 24) -> list[LLMRequest]:
    prompts = ["Japanese: 横浜市は関内駅前で相談を始めた。\nEnglish:", "日本語: 東京\nEnglish:", "Terms: a = b\nEnglish:"]
    return [LLMRequest(id=f"r{i}", prompt=p, params=GenParams(max_tokens=max_tokens, stop=("\n",)), required_terms=terms)
            for i, p in enumerate(prompts)]


def residual(text: str, lang: str) -> list[str]:
    return [c for c in text if filters.is_residual_char(c, lang)]


def test_repeated_ngrams_are_found_in_the_generated_tokens():
    assert repeated_ngram_tokens([1, 2, 3, 1, 2], 3) == [3]  # 1 2 3 again would repeat a 3-gram
    assert repeated_ngram_tokens([1, 2, 1, 2, 1], 2) == [2]
    assert repeated_ngram_tokens([1, 2, 3, 4], 3) == []
    assert repeated_ngram_tokens([1, 1, 1], 0) == []


def test_the_vocabulary_mask_bans_the_filter_s_characters_and_keeps_stops(tiny_model_dir):  # noqa: F811
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    pieces = {i: tokenizer.decode([i]) for i in range(len(tokenizer))}
    for target in ("en", "zh"):
        vocab = build_vocab(tokenizer, len(tokenizer) + 3, banned_pattern(target, ";"), ("\n",))
        for i, piece in pieces.items():
            has_stop = "\n" in piece
            if not has_stop and (";" in piece or residual(piece, target)):
                assert vocab.banned[i], (target, piece)
            if has_stop:
                assert i in vocab.terminal
        assert vocab.banned[len(tokenizer):].all()  # ids the tokenizer does not have
        assert tokenizer.eos_token_id in vocab.terminal and not vocab.banned[tokenizer.eos_token_id]
        assert vocab.banned[tokenizer.pad_token_id]
    kana = [i for i, p in pieces.items() if any("\u3040" <= c <= "\u30ff" for c in p)]
    assert kana and all(build_vocab(tokenizer, len(tokenizer), banned_pattern("zh"), ("\n",)).banned[kana])


def test_required_terms_are_forced_verbatim_into_a_random_model_s_answers(tmp_path, tiny_model_dir):  # noqa: F811
    hook = AnchorHook("en", "text", no_repeat_ngram=4)
    model = LocalModel(config(tmp_path, tiny_model_dir), hook)
    answers = model.generate(requests(TERMS))
    assert all(term in a.text for a in answers for term in TERMS), [a.text for a in answers]
    assert not any(residual(a.text, "en") for a in answers)

    free = LocalModel(config(tmp_path, tiny_model_dir)).generate(requests(TERMS))
    assert not all(term in a.text for a in free for term in TERMS)  # the random model alone does not write them


def test_terms_fit_even_when_the_budget_is_tight(tmp_path, tiny_model_dir):  # noqa: F811
    model = LocalModel(config(tmp_path, tiny_model_dir), AnchorHook("zh", "text"))
    tokens = sum(len(model.tokenizer.encode(t, add_special_tokens=False)) for t in TERMS)
    answers = model.generate(requests(TERMS, max_tokens=tokens + 1))
    assert all(term in a.text for a in answers for term in TERMS), [a.text for a in answers]


def test_anchored_translation_on_a_random_model_passes_the_entity_and_script_rules(tmp_path, sample_dir,
                                                                                  tiny_model_dir):  # noqa: F811
    rows = mapped_rows(sample_dir, "zh", per_dataset=1)
    source = write_jsonl(tmp_path / "zh.jsonl", rows)
    settings = translate_settings({"method": "anchored", "max_tokens": {"min": 16, "max": 48},
                                     "anchored": {"term_max_tokens": 4}})
    metrics = translate_file(source, "zh", tmp_path / "out.jsonl", tmp_path / "failed.jsonl", settings,
                             config(tmp_path, tiny_model_dir), tmp_path / "m.json")

    kept, lost = read_jsonl(tmp_path / "out.jsonl"), read_jsonl(tmp_path / "failed.jsonl")
    assert sorted(r["id"] for r in kept + lost) == sorted(r["id"] for r in rows)
    assert all(r["reasons"] and r["detail"] for r in lost)
    for record in kept:
        sample = Sample.from_record(record)
        assert all(e in sample.text for e in sample.entities()) and not residual(record["input"] + record["output"], "zh")
    assert metrics["method_stats"]["texts"]["missing_terms"] == 0
    assert set(metrics["failures"]) <= {"entity_overlong", "entity_empty", "entity_invalid", "untranslated", "empty_text"}


@pytest.mark.parametrize("kind", ["entity", "text"])
def test_hook_names_change_with_what_constrains_the_answer(kind):
    names = {AnchorHook("en", kind).name, AnchorHook("zh", kind).name, AnchorHook("en", kind, ";").name,
             AnchorHook("en", kind, no_repeat_ngram=3).name, AnchorHook("en", kind, term_bias=2.0).name}
    assert len(names) == 5  # each enters the cache key: answers under different constraints never mix
