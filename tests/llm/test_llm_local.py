"""The local (transformers) and replay backends, on the tiny random Llama from tiny_model.py."""

from __future__ import annotations

import pytest
from tiny_model import tiny_model_dir  # noqa: F401  (fixture)

from configs import make, replace
from mmm.llm import GenParams, LLMConfigError, LLMRequest, ReplayMissError, run_requests
from mmm.llm import types as t

PROMPTS = [
    "横浜市は関内駅前の新庁舎で子育て相談の受付を始めた。/NER",
    "作家の森川遥の長編小説が朗読された。/NER",
    "The company in Tokyo announced a product.",
    "东京",
    "2023/04/01から",
    "A rather longer English prompt so that left padding really matters for the shorter ones.",
]


@pytest.fixture(scope="session")
def varied_model_dir(tiny_model_dir, tmp_path_factory):  # noqa: F811
    """The tiny model re-initialised with wider weights.

    At the default init its greedy answer repeats one token whatever the prompt, which would
    hide padding and stop-string bugs; with wider weights every prompt gets its own answer.
    """
    import shutil

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out = tmp_path_factory.mktemp("varied-tiny-llama")
    shutil.copytree(tiny_model_dir, out, dirs_exist_ok=True)
    config = AutoConfig.from_pretrained(out)
    config.initializer_range = 0.2
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    return out


@pytest.fixture
def local_config(tmp_path, varied_model_dir):
    return make("llm", backend="local", model="tiny", local_model_dir=str(varied_model_dir),
                     cache_dir=str(tmp_path / "cache"), local_batch_size=4, progress=False)


def batch(params: GenParams = GenParams(max_tokens=12)) -> list[LLMRequest]:
    return [LLMRequest(f"r{i}", p, params) for i, p in enumerate(PROMPTS)]


def texts(report) -> dict[str, str]:
    return {i: r.text for i, r in report.results.items()}


def test_left_padded_batches_answer_exactly_like_one_prompt_at_a_time(local_config, tmp_path):
    batched = run_requests(batch(), local_config)
    single = run_requests(batch(), replace(local_config, local_batch_size=1, cache_dir=str(tmp_path / "single")))
    assert texts(batched) == texts(single)
    assert len(set(texts(batched).values())) == len(PROMPTS)  # the model really answers each prompt
    assert all(r.ok and r.completion_tokens == 12 and r.finish_reason == "length" for r in batched.results.values())
    assert batched.summary.sent == 6 and batched.summary.prompt_tokens > 6


def test_stop_strings_cut_the_answer_where_generation_stopped(local_config, tmp_path):
    free = texts(run_requests(batch(GenParams(max_tokens=16)), local_config))
    # for some prompt, a piece of its own free answer that first occurs after some text is the stop string
    rid, stop = next(
        (i, a[p : p + 2])
        for i, a in sorted(free.items())
        for p in range(3, len(a) - 2)
        if a[p : p + 2].strip() and a.index(a[p : p + 2]) == p and a[:p].strip()
    )
    answer = free[rid]
    stopped = run_requests([LLMRequest(rid, PROMPTS[int(rid[1:])], GenParams(max_tokens=16, stop=(stop,)))],
                           replace(local_config, cache_dir=str(tmp_path / "stop")))
    result = stopped.results[rid]
    assert result.text == answer[: answer.index(stop)] and result.finish_reason == "stop"
    assert result.completion_tokens < 16


def test_cached_answers_need_no_model_at_all(local_config, tmp_path):
    first = run_requests(batch(), local_config)
    gone = replace(local_config, local_model_dir=str(tmp_path / "no-model-here"))
    again = run_requests(batch(), gone)
    assert texts(again) == texts(first) and all(r.cached for r in again.results.values())
    with pytest.raises(LLMConfigError, match="convert_base"):
        run_requests([LLMRequest("new", "a prompt nobody asked yet")], gone)


def test_a_greedy_empty_answer_is_cached_and_replayed_as_empty_without_the_model(local_config, tmp_path):
    free = texts(run_requests(batch(GenParams(max_tokens=8)), local_config))
    rid = "r0"
    params = GenParams(max_tokens=8, stop=(free[rid][:1],))  # the first character stops it: nothing is left
    first = run_requests([LLMRequest(rid, PROMPTS[0], params)], replace(local_config, cache_dir=str(tmp_path / "e")))
    assert first.results[rid].error == t.EMPTY and first.summary.sent == 1
    gone = replace(local_config, cache_dir=str(tmp_path / "e"), local_model_dir=str(tmp_path / "no-model-here"))
    again = run_requests([LLMRequest(rid, PROMPTS[0], params)], gone)
    result = again.results[rid]
    assert (result.error, result.cached, result.text) == (t.EMPTY, True, None)
    assert result.detail == first.results[rid].detail  # a failed row reads the same generated or replayed
    assert again.summary.sent == 0 and again.summary.failures == {t.EMPTY: 1} and again.summary.cache_hits == 1
    sampled = GenParams(max_tokens=8, stop=params.stop, temperature=1.0)  # sampling may answer next time
    run_requests([LLMRequest(rid, PROMPTS[0], sampled)], replace(local_config, cache_dir=str(tmp_path / "s")))
    assert not list((tmp_path / "s").rglob("*.jsonl")) or all(
        '"text":""' not in f.read_text() for f in (tmp_path / "s").rglob("*.jsonl"))


def test_chat_api_without_a_chat_template_is_a_clear_error(local_config):
    with pytest.raises(LLMConfigError, match="no chat template"):
        run_requests(batch(), replace(local_config, api="chat"))


def test_replay_serves_the_local_answers_and_names_what_is_missing(local_config):
    first = run_requests(batch(), local_config)
    replay = replace(local_config, backend="replay", local_model_dir="/nonexistent")
    assert texts(run_requests(batch(), replay)) == texts(first)
    with pytest.raises(ReplayMissError, match=r"replay: 2 of 8 prompts are not in the cache at .*--backend local"):
        run_requests(batch() + [LLMRequest("x", "new one"), LLMRequest("y", "new two")], replay)


def test_max_requests_applies_to_local_generation(local_config):
    report = run_requests(batch(), replace(local_config, max_requests=3))
    assert report.summary.answered == 3 and report.summary.failures == {t.BUDGET: 3}
    rest = run_requests(batch(), local_config)
    assert rest.summary.cache_hits == 3 and rest.summary.sent == 3


class ForceToken:
    """A logits hook that allows a single token id at every step (the simplest constraint)."""

    name = "force-one-token-v1"

    def __init__(self, token_id: int):
        self.token_id = token_id
        self.calls = []

    def processors(self, tokenizer, requests, prompt_length):
        import torch

        self.calls.append(([r.required_terms for r in requests], prompt_length))

        def only(input_ids, scores):
            forced = torch.full_like(scores, float("-inf"))
            forced[:, self.token_id] = 0.0
            return forced

        return [only]


def test_a_logits_hook_steers_generation_and_keys_its_answers_apart(local_config, varied_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(varied_model_dir)
    token_id = tokenizer.convert_tokens_to_ids(tokenizer.tokenize("Tokyo")[0])
    hook = ForceToken(token_id)
    requests = [LLMRequest(f"r{i}", p, GenParams(max_tokens=5), required_terms=("Tokyo",)) for i, p in enumerate(PROMPTS)]
    steered = run_requests(requests, local_config, logits_hook=hook)
    piece = tokenizer.decode([token_id])
    assert all(r.text == piece * 5 for r in steered.results.values())
    assert hook.calls and all(terms == ("Tokyo",) for terms in hook.calls[0][0])
    # the same prompts without the hook are different cache entries, so they are generated afresh
    free = run_requests(requests, local_config)
    assert free.summary.cache_hits == 0 and texts(free) != texts(steered)
    assert run_requests(requests, local_config, logits_hook=hook).summary.cache_hits == len(requests)
