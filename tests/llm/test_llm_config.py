from __future__ import annotations

import pytest

from configs import make
from mmm.errors import ParamsError
from mmm.llm import GenParams, LLMConfigError, LLMRequest, api_key_from_env


def test_the_repo_params_section_builds_a_config():
    config = make("llm")
    assert config.backend == "local" and config.family == "local-completions"
    assert config.price() is None  # the local model is free
    assert make("llm", model="gpt-4o-mini").price() is not None


def test_cli_flags_win_and_none_means_not_given():
    config = make("llm", concurrency=2).with_flags(backend="openai", concurrency=None)
    assert config.backend == "openai" and config.concurrency == 2


def test_unknown_keys_and_bad_values_are_all_named():
    with pytest.raises(ParamsError, match="llm.concurency: unknown key"):
        make("llm", concurency=4)
    with pytest.raises(ParamsError) as info:
        make("llm", backend="gpt", api="stream", concurrency=0)
    assert [line.split(": ")[1] for line in info.value.lines()] == ["llm.backend", "llm.api", "llm.concurrency"]


def test_a_key_in_params_is_refused():
    with pytest.raises(ParamsError, match="llm.api_key: must not be in params.*OPENAI_API_KEY"):
        make("llm", api_key="sk-oops")


def test_missing_key_error_names_the_variable_and_never_a_value(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMConfigError, match=r"\$OPENAI_API_KEY"):
        api_key_from_env()


def test_replay_reads_the_family_it_replays():
    assert make("llm", backend="replay", replay_from="openai", api="chat").family == "openai-chat"
    assert make("llm", backend="replay").family == "local-completions"


def test_prices_compute_cost():
    config = make("llm", model="m", prices={"m": {"input": 1.0, "output": 2.0}})
    assert config.price().cost(1_000_000, 500_000) == pytest.approx(2.0)
    with pytest.raises(ParamsError, match="llm.prices.m.in: unknown key"):
        make("llm", prices={"m": {"in": 1.0}})


def test_gen_params_and_requests_validate():
    assert GenParams(stop=["\n"]).stop == ("\n",)
    with pytest.raises(ValueError):
        GenParams(max_tokens=0)
    with pytest.raises(ValueError):
        GenParams(stop=("",))
    with pytest.raises(ValueError):
        LLMRequest("", "prompt")
    request = LLMRequest("a", "Translate.", system="You translate.")
    assert request.completion_prompt() == "You translate.\n\nTranslate."
    assert request.chat_messages()[0] == {"role": "system", "content": "You translate."}
