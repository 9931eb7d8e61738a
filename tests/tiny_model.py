"""A tiny randomly initialised Llama and a tokenizer trained on the embedded sample, for fast tests.

Nothing is downloaded: the tokenizer is a byte-level BPE trained with ``tokenizers`` on the
sample's inputs and outputs (so Japanese and Chinese cost a few tokens, not dozens of bytes),
and the model is a 2-layer Llama with tied embeddings like Gemma's. Building both takes about a
second. Other tests reuse it with ``build_tiny_model(dir)`` or the ``tiny_model_dir`` fixture
(import it into a test module: ``from tiny_model import tiny_model_dir  # noqa: F401``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "data" / "raw" / "sample"
SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


def sample_records(sample_dir: Path = SAMPLE_DIR) -> list[dict]:
    """Every MMM record of the sample: Japanese sources and the English/Chinese references."""
    files = sorted((sample_dir / "ja").glob("*.jsonl")) + sorted((sample_dir / "reference").glob("*/*.jsonl"))
    return [json.loads(line) for path in files for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def sample_tconer(sample_dir: Path = SAMPLE_DIR, langs: tuple[str, ...] = ("en", "ja", "zh")) -> list[dict]:
    """Stand-in TCONER records from the sample's Pile-NER conversations (a fixed text label, real entities).

    The real TCONER rows come from another stage; tests only need rows of the right shape and
    count (~60 per language), so every language reuses the English texts.
    """
    rows = []
    for conv in json.loads((sample_dir / "pile-ner" / "tconer.json").read_text(encoding="utf-8")):
        turns = [t["value"] for t in conv["conversations"]]
        text = turns[0].removeprefix("Text: ")
        pairs = []
        for question, answer in zip(turns[2::2], turns[3::2]):
            kind = question.removeprefix("What describes ").removesuffix(" in the text?")
            try:
                entities = json.loads(answer)
            except json.JSONDecodeError:  # the sample keeps a few malformed answers on purpose
                continue
            for entity in entities if isinstance(entities, list) else []:
                if isinstance(entity, str) and not set("/:;") & set(kind) and ";" not in entity and entity and entity in text:
                    pairs.append(f":{kind};{entity}")
        for lang in langs:
            rows.append({"id": conv["id"], "lang": lang, "dataset": "TCONER", "input": f"{text}/NER",
                         "output": "General/NER/" + "".join(pairs)})
    return rows


def train_tokenizer(texts: list[str], vocab_size: int = 1200):
    """A byte-level BPE that adds BOS like Llama's, wrapped as a transformers fast tokenizer."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[SPECIAL_TOKENS[k] for k in ("pad_token", "bos_token", "eos_token", "unk_token")],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    bos = SPECIAL_TOKENS["bos_token"]
    core.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, core.token_to_id(bos))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=core, **SPECIAL_TOKENS)


def build_tiny_model(out_dir: Path, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny Llama (safetensors) and its tokenizer to ``out_dir``; returns ``out_dir``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    records = sample_records() + sample_tconer(langs=("en",))
    texts = [r["input"] + "\n" + r["output"] for r in records]
    tokenizer = train_tokenizer(texts)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        initializer_range=0.2,  # large enough logits that a few LoRA steps visibly lower the loss
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tests run one torch thread: on a shared 2-core box two threads stall whenever another
    process holds a core (import this fixture into a test module to apply it there)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """One tiny model per test session (built on first use)."""
    path = tmp_path_factory.getbasetemp() / "tiny-llama"
    if not (path / "config.json").exists():
        build_tiny_model(path)
    return path
