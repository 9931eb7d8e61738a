"""The generation core (src/mmm/modeling/generation.py): where a row ends, and whose settings apply."""

from __future__ import annotations

import shutil

import pytest
from tiny_model import one_torch_thread, tiny_model_dir  # noqa: F401

from mmm.modeling.generation import (
    Engine,
    Settings,
    finish_row,
    oiellm_generation_config,
)
from mmm.modeling.loading import ModelDirError, load_tokenizer


@pytest.fixture(scope="module")
def tok(tiny_model_dir):  # noqa: F811
    return load_tokenizer(tiny_model_dir, padding_side="left")


def ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def test_a_row_ends_at_the_first_stop_string_or_eos(tok):
    answer, newline, pad, eos = ids(tok, "Society/NER/"), ids(tok, "\n"), tok.pad_token_id, tok.eos_token_id
    newline_rule = Settings(max_new_tokens=20, stop_strings=("\n",))
    padded = answer + newline + [pad] * 3  # transformers pads a row that stopped while the batch went on
    assert finish_row(tok, padded, 7, frozenset({eos}), newline_rule) == (
        finish_row(tok, answer + newline + ids(tok, "junk"), 7, frozenset({eos}), newline_rule))
    out = finish_row(tok, padded, 7, frozenset({eos}), newline_rule)
    assert (out.text, out.new_tokens, out.prompt_tokens, out.finish) == ("Society/NER/", len(answer) + 1, 7, "stop")
    out = finish_row(tok, answer + [eos] + newline, 7, frozenset({eos}), newline_rule)
    assert (out.text, out.new_tokens, out.finish) == ("Society/NER/", len(answer) + 1, "eos")
    # a stop string spread over several tokens is cut where it starts, counted to the token completing it
    spread = Settings(max_new_tokens=20, stop_strings=("NER/",))
    out = finish_row(tok, answer + ids(tok, "x"), 0, frozenset({eos}), spread)
    assert (out.text, out.new_tokens, out.finish) == ("Society/", len(answer), "stop")


def test_a_row_without_a_stop_ran_out_of_tokens_or_stopped_early(tok):
    answer, pad = ids(tok, "Society/NER/"), tok.pad_token_id
    full = finish_row(tok, answer, 0, frozenset({tok.eos_token_id}), Settings(max_new_tokens=len(answer)))
    assert (full.text, full.new_tokens, full.finish) == ("Society/NER/", len(answer), "length")
    early = finish_row(tok, answer + [pad, pad], 0, frozenset({tok.eos_token_id}), Settings(max_new_tokens=len(answer) + 2))
    assert (early.text, early.new_tokens, early.finish) == ("Society/NER/", len(answer), "stop")


def test_folder_settings_are_read_but_never_leak_into_explicit_ones(tiny_model_dir, tmp_path):  # noqa: F811
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    plain = Engine.load(folder)
    prompt = plain.tokenizer("text/NER\n")["input_ids"]
    [free] = plain.generate([prompt], Settings(max_new_tokens=6))
    assert free.finish == "length" and free.text  # the random model rambles for the whole budget
    first = plain.generate([prompt], Settings(max_new_tokens=1))[0].text
    config = oiellm_generation_config(plain.tokenizer, max_new_tokens=9)
    config.stop_strings = [first]
    config.save_pretrained(folder)

    shipped = Engine.load(folder)
    assert shipped.folder_settings() == Settings(max_new_tokens=9, stop_strings=(first,))
    [stopped] = shipped.generate([prompt], shipped.folder_settings())
    assert (stopped.text, stopped.new_tokens, stopped.finish) == ("", 1, "stop")
    assert shipped.generate([prompt], Settings(max_new_tokens=6)) == [free]  # explicit settings: the folder's stop is off


def test_only_safetensors_folders_load(tiny_model_dir, tmp_path):  # noqa: F811
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ModelDirError, match="pickle weights pytorch_model.bin"):
        Engine.load(folder)


class Script:
    """A logits processor that makes the model print ``ids`` from the prompt's end on (then repeat the last)."""

    def __init__(self, ids: list[int], prompt_tokens: int):
        self.ids, self.prompt_tokens = ids, prompt_tokens

    def __call__(self, input_ids, scores):
        step = min(input_ids.shape[1] - self.prompt_tokens, len(self.ids) - 1)
        forced = scores.new_full(scores.shape, float("-inf"))
        forced[:, self.ids[step]] = 0.0
        return forced


@pytest.fixture(scope="module")
def shipped_dir(tiny_model_dir, tmp_path_factory):  # noqa: F811
    """The tiny model with the generation config a trained OIELLM folder ships."""
    folder = tmp_path_factory.mktemp("shipped")
    shutil.copytree(tiny_model_dir, folder, dirs_exist_ok=True)
    oiellm_generation_config(load_tokenizer(folder)).save_pretrained(folder)
    return folder


def test_the_shipped_config_stops_at_every_token_that_holds_the_newline(shipped_dir, tok):
    from transformers import GenerationConfig

    config = GenerationConfig.from_pretrained(shipped_dir)
    newline_tokens = [i for i in range(len(tok)) if "\n" in tok.decode([i])]
    assert newline_tokens == ids(tok, "\n")  # the tiny BPE has one (Gemma: 32 runs of newlines)
    assert config.eos_token_id == [tok.eos_token_id, *newline_tokens]
    assert config.stop_strings is None and config.do_sample is False and config.max_new_tokens == 128


@pytest.mark.parametrize("end", ["\n", "\n\n", "eos"])  # "\n\n" is two newline tokens here
def test_the_text_generation_pipeline_returns_one_answer(shipped_dir, tok, end):
    """The standard route (README: The released model): a plain pipeline call prints the answer and nothing
    after it, whether the model ends it with EOS or with a newline (a line of junk is scripted after either)."""
    from transformers import LogitsProcessorList, pipeline

    pipe = pipeline("text-generation", model=str(shipped_dir))
    prompt = "Marlon Brando starred in On the Waterfront./NER\n"
    answer = "Society/NER/:person;Marlon Brando"
    ending = [tok.eos_token_id] if end == "eos" else ids(tok, end)
    script = Script(ids(tok, answer) + ending + ids(tok, "junk/NER/\nmore"), len(tok(prompt)["input_ids"]))
    [out] = pipe(prompt, return_full_text=False, logits_processor=LogitsProcessorList([script]))
    assert out["generated_text"] == (answer if end == "eos" else answer + "\n")
    # the same rows through mmm's own engine: the folder's newline EOS ids leave its answers as they were
    engine = Engine.load(shipped_dir)
    assert engine.eos_ids == frozenset({tok.eos_token_id})
    [row] = engine.generate([tok(prompt)["input_ids"]], engine.folder_settings(), lambda width: [Script(script.ids, width)])
    assert (row.text, row.finish) == (answer, "eos" if end == "eos" else "stop")
