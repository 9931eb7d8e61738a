"""Pytest fixtures for anything that talks to an LLM (registered from conftest.py).

- ``fake_openai``: a started ``FakeOpenAI`` server on 127.0.0.1 (see fake_openai.py); program
  it by setting ``answer``, ``faults``, ``latency`` on it.
- ``openai_env``: a test API key in ``OPENAI_API_KEY`` and no ``OPENAI_BASE_URL``; returns the key.
- ``openai_config``: an ``LLMConfig`` for the fake server with fast retries and a temp cache.
For the ``local`` backend without the real model, use ``tiny_model_dir`` from tiny_model.py.
"""

from __future__ import annotations

import pytest
from fake_openai import FakeOpenAI

from configs import make

TEST_API_KEY = "sk-test-FAKEKEY-0123456789abcdef"


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def openai_env(monkeypatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_API_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return TEST_API_KEY


@pytest.fixture
def openai_config(tmp_path, fake_openai, openai_env):

    return make("llm", 
        backend="openai",
        model="fake-model",
        api="chat",
        base_url=fake_openai.base_url,
        cache_dir=str(tmp_path / "llm-cache"),
        concurrency=4,
        max_retries=2,
        timeout_s=5.0,
        backoff_base_s=0.01,
        backoff_max_s=0.1,
        progress=False,
    )
