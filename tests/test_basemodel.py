"""Base model conversion: config checks, quantizer clearing, the folder check, the real converted folder."""

from __future__ import annotations

import json

import pytest
from tiny_model import tiny_model_dir  # noqa: F401  (fixture)
from typer.testing import CliRunner

from configs import make, write_params
from mmm import basemodel
from mmm.cli import app


def test_config_validates_and_names_unknown_keys():
    assert make("base_model").dtype == "bfloat16"
    with pytest.raises(ValueError, match="base_model.dtype: Input should be 'float32', 'bfloat16' or 'float16'"):
        make("base_model", dtype="int4")
    with pytest.raises(ValueError, match="base_model.dtpye: unknown key"):
        make("base_model", dtpye="float32")


def test_a_version_mismatch_stops_before_any_work_with_a_clean_cli_error(tmp_path):
    params = write_params(tmp_path / "params.yaml", base_model={"version": "0.0.1"})
    result = CliRunner().invoke(app, ["convert-base", "--params", str(params), "--model-dir", str(tmp_path / "m")])
    assert result.exit_code == 1 and "base_model.version is 0.0.1" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "m").exists()


def test_drop_quantizer_makes_a_model_saveable_without_quantization_config(tiny_model_dir, tmp_path):  # noqa: F811
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.hf_quantizer = object()  # what a GGUF load leaves behind
    model.config.quantization_config = {"quant_method": "gguf"}
    basemodel.drop_quantizer(model)
    model.save_pretrained(tmp_path / "saved")
    assert "quantization_config" not in json.loads((tmp_path / "saved" / "config.json").read_text())


def greedy_by_hand(folder, prompt: str, steps: int) -> str:
    """The greedy continuation computed with plain forward passes, independently of ``generate``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        for _ in range(steps):
            ids = torch.cat([ids, model(ids).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return tokenizer.decode(ids[0, -steps:], skip_special_tokens=True)


def test_check_loads_a_folder_and_generates(tiny_model_dir, tmp_path):  # noqa: F811
    expected = greedy_by_hand(tiny_model_dir, "東京", 4)
    assert expected.strip() and basemodel.check(tiny_model_dir, "東京", max_new_tokens=4) == expected
    with pytest.raises(basemodel.ConversionError, match="convert-base"):
        basemodel.check(tmp_path, "x")


def test_the_converted_default_model_loads_and_generates(root):
    folder = root / "models" / "base" / "gemma-3-270m"
    if not (folder / "config.json").exists():
        pytest.skip("models/base/gemma-3-270m not built (dvc repro convert_base)")
    info = json.loads((folder / "conversion.json").read_text())
    assert info["gguf_sha256"] == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    assert info["model_type"] == "gemma3_text" and info["parameters"] > 250_000_000
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert basemodel.check(folder, "The capital of France is", max_new_tokens=4).strip()
