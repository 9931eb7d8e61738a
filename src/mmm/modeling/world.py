"""The process world a launcher set up, as accelerate needs to hear it."""

from __future__ import annotations

import os


def cpu_world() -> bool:
    """True for a multi-process launch without GPUs (``torchrun``).

    accelerate only builds a gloo world of CPU processes when told it runs on CPU;
    ``accelerate launch --cpu`` says so via ACCELERATE_USE_CPU, torchrun does not.
    """
    import torch

    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
