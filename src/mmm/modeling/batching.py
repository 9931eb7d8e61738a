"""Length-bucketed batch order and padding for training.

Short MMM examples (a review sentence) and long ones (a news paragraph) differ several-fold in
length, so random batches waste most of their compute on padding. Shuffling, then sorting
within "mega-batches" of ``batch_size * pool`` examples, gives batches of similar length that
still arrive in random order. The order for all epochs is fixed up front from the seed, which
lets a plain ``DataLoader(batch_size=...)`` (what DeepSpeed requires) read it sequentially and
accelerate shard whole batches across processes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from mmm.modeling.sequence import IGNORE_INDEX, Example


def bucketed_order(lengths: Sequence[int], batch_size: int, epochs: int, seed: int, pool: int = 16,
                   bucket: bool = True) -> list[int]:
    """Example indices for ``epochs`` passes; consecutive runs of ``batch_size`` are similar in length."""
    if batch_size < 1 or epochs < 1:
        raise ValueError("batch_size and epochs must be >= 1")
    order: list[int] = []
    for epoch in range(epochs):
        rng = random.Random(f"{seed}:{epoch}")
        indices = list(range(len(lengths)))
        rng.shuffle(indices)
        if not bucket:
            order.extend(indices)
            continue
        span = batch_size * pool
        batches: list[list[int]] = []
        for start in range(0, len(indices), span):
            chunk = sorted(indices[start:start + span], key=lambda i: lengths[i], reverse=True)
            batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
        rng.shuffle(batches)
        order.extend(i for batch in batches for i in batch)
    return order


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch; padding gets attention 0 and label ``IGNORE_INDEX``."""
    import torch

    width = max(len(e) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example)
        input_ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        attention[row, :n] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention}
