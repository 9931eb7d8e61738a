"""Causal-LM loss computed on the answer positions only.

A causal LM's ``forward`` projects *every* position onto the vocabulary, then the loss ignores
the prompt. With Gemma 3's 262k-token vocabulary that projection is most of a training step on
CPU, and MMM prompts are longer than their answers, so we run the decoder, keep the hidden
states that predict answer tokens, and project only those. The loss is the same number; the
trainer compares both paths on the first batch (``mode="check"``) and keeps the model's own
``forward`` if an architecture post-processes logits in a way this module does not know.

The wrapper is what ``accelerator.prepare`` wraps, so DDP/FSDP/DeepSpeed hooks run on its
``forward``; the language model itself is ``.lm``.
"""

from __future__ import annotations

import torch
from torch import nn

from mmm.modeling.sequence import IGNORE_INDEX


class AnswerLoss(nn.Module):
    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm
        self.fast = True  # set from the first-batch check

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                mode: str = "train") -> torch.Tensor:
        """The mean loss over answer tokens; ``mode="check"`` returns (answer-only, model's own) stacked."""
        if mode == "check":
            own = self.lm(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
            return torch.stack([self.answer_loss(input_ids, attention_mask, labels).float(), own.float()])
        if not self.fast:
            return self.lm(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        return self.answer_loss(input_ids, attention_mask, labels)

    def answer_loss(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        hidden = self.lm.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        targets = labels[:, 1:]
        keep = targets != IGNORE_INDEX
        logits = self.lm.get_output_embeddings()(hidden[:, :-1][keep])
        softcap = getattr(self.lm.config, "final_logit_softcapping", None)
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        return nn.functional.cross_entropy(logits.float(), targets[keep])
