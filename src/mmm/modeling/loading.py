"""Loading models and tokenizers from local safetensors folders only, and the OIELLM format file.

Every load is local (no hub), refuses pickle weights (``use_safetensors=True``) and never runs
code shipped with a checkpoint (``trust_remote_code=False``): a model folder is data, not a
program. ``oiellm.json`` next to the weights records how the model was trained (separator,
target), so prediction formats prompts exactly as training did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmm.errors import MMMError
from mmm.modeling.sequence import SEPARATOR, check_target

FORMAT_FILE = "oiellm.json"
FORMAT_VERSION = 1
DTYPES = ("float32", "bfloat16", "float16")


class ModelDirError(MMMError, FileNotFoundError):
    """A model folder that is missing, incomplete or not in safetensors."""


def check_model_dir(path: str | Path) -> Path:
    """Fail early, naming what is missing, before transformers prints a long traceback."""
    folder = Path(path)
    if not folder.is_dir():
        raise ModelDirError(f"{folder}: no such model folder")
    if not (folder / "config.json").exists():
        raise ModelDirError(f"{folder}: not a transformers model folder (no config.json)")
    if not any(folder.glob("*.safetensors")):
        pickles = [p.name for p in folder.iterdir() if p.suffix in {".bin", ".pt", ".pth", ".pkl"}]
        hint = f" (found pickle weights {', '.join(pickles)}: convert them to safetensors first)" if pickles else ""
        raise ModelDirError(f"{folder}: no *.safetensors weights{hint}")
    return folder


def torch_dtype(name: str) -> Any:
    import torch

    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {name!r}")
    return getattr(torch, name)


def load_tokenizer(path: str | Path, padding_side: str = "right") -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    if tokenizer.eos_token_id is None:
        raise ModelDirError(f"{path}: the tokenizer defines no EOS token")
    if tokenizer.pad_token_id is None:  # Llama 3 has none; padding is masked out anyway
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


def load_model(path: str | Path, dtype: str = "float32") -> Any:
    from transformers import AutoModelForCausalLM

    check_model_dir(path)
    return AutoModelForCausalLM.from_pretrained(
        path, dtype=torch_dtype(dtype), use_safetensors=True, trust_remote_code=False, local_files_only=True
    )


def write_format(path: str | Path, target: str, base_model: str) -> None:
    info = {"format_version": FORMAT_VERSION, "separator": SEPARATOR, "target": check_target(target), "base_model": base_model}
    Path(path, FORMAT_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def read_format(path: str | Path) -> dict[str, Any]:
    """The model's training format; a plain base model (no file) is treated as ``joint``."""
    file = Path(path, FORMAT_FILE)
    if not file.exists():
        return {"format_version": FORMAT_VERSION, "separator": SEPARATOR, "target": "joint", "base_model": str(path)}
    info = json.loads(file.read_text(encoding="utf-8"))
    if info.get("separator") != SEPARATOR or info.get("format_version") != FORMAT_VERSION:
        raise ModelDirError(
            f"{file}: trained with separator {info.get('separator')!r} / format {info.get('format_version')}, "
            f"this code uses {SEPARATOR!r} / {FORMAT_VERSION}"
        )
    check_target(info.get("target", ""))
    return info
