"""Why a run stopped early, as the line that ends its ``IncompleteRun``.

Stages that use the LLM layer count their pending rows by reason (``mmm.llm.types.PENDING``);
this turns the counts into one sentence that says what stopped the run and that a rerun continues.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mmm.llm.config import LLMConfig
from mmm.llm.runner import RunSummary, budget_limits
from mmm.llm.types import BATCH_PENDING, BUDGET


def describe(pending: Mapping[str, int], total: int, noun: str, config: LLMConfig,
             summaries: Iterable[RunSummary]) -> str:
    """E.g. ``13 of 18 rows pending: 13 not sent, the budget (llm.max_requests=5) was reached; ...; rerun to continue``."""
    why = []
    if pending.get(BUDGET):
        why.append(f"{pending[BUDGET]} not sent, the budget ({budget_limits(config)}) was reached")
    if pending.get(BATCH_PENDING):
        batches = {b for s in summaries for b in s.pending_batches}
        why.append(f"{pending[BATCH_PENDING]} waiting on Batch API results ({len(batches)} batch(es) still running)")
    return (f"{sum(pending.values())} of {total} {noun} pending: {'; '.join(why)}; "
            "the answers so far are cached: rerun to continue")
