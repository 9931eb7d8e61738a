from __future__ import annotations

from pathlib import Path

import pytest

# LLM fixtures (fake_openai server, openai_env, openai_config): see tests/fixtures_llm.py
pytest_plugins = ["fixtures_llm"]

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "data" / "raw" / "sample"
# Real third-party data (research-only licence): read in place, never copied.
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR
