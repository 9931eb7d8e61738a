"""Same inputs on the same machine, same bytes: one context for training and prediction runs.

Inside it the RNGs are seeded (accelerate's ``set_seed``: Python, NumPy, torch), torch uses the
configured number of CPU threads (float sums depend on how work is split) and deterministic
kernels where torch has them (``warn_only``: an op without one warns instead of failing). The
thread count and the deterministic switch are restored on exit, so calling the library does
not change the process it runs in (a test session, a notebook); seeding is not undone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def reproducible(seed: int, threads: int | None = None) -> Iterator[None]:
    """Seed everything, fix ``threads`` (None: torch's default) and use deterministic kernels."""
    import torch
    from accelerate.utils import set_seed

    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    set_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1], warn_only=before[2])
