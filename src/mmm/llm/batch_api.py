"""The provider Batch API: submit in one run, collect in a later one.

State lives in ``<cache_dir>/batches/<request-set hash>.json`` (batch id, input file id and the
cache keys it answers), written right after the batch is created, so any later run, after a
crash or on another day, can poll it and move its answers into the cache. A finished batch's
state file is removed once its answers are in the cache; rows it did not answer are failed in
that run and sent again by the next.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mmm.io import write_json
from mmm.llm import types as t
from mmm.llm.config import LLMConfig
from mmm.llm.openai_api import endpoint, parse_body, redact, request_body
from mmm.llm.types import Completion, Failure, LLMRequest

log = logging.getLogger(__name__)

STATE_DIR = "batches"
RUNNING = frozenset({"validating", "in_progress", "finalizing", "cancelling"})


@dataclass
class BatchState:
    batch_id: str
    input_file_id: str
    family: str
    model: str
    endpoint: str
    keys: list[str]
    created_at: float

    @staticmethod
    def path_for(cache_dir: str | Path, set_hash: str) -> Path:
        return Path(cache_dir) / STATE_DIR / f"{set_hash}.json"


def set_hash(keys: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:20]


def load_states(cache_dir: str | Path, family: str, model: str) -> list[tuple[Path, BatchState]]:
    folder = Path(cache_dir) / STATE_DIR
    states = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            state = BatchState(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            log.warning("%s: unreadable batch state skipped (%s)", path, exc)
            continue
        if state.family == family and state.model == model:
            states.append((path, state))
    return states


async def submit(client: Any, items: Sequence[tuple[str, LLMRequest]], config: LLMConfig) -> tuple[Path, BatchState]:
    """Upload the requests as JSONL (custom_id = cache key), create the batch, record its state."""
    keys = [key for key, _ in items]
    digest = set_hash(keys)
    lines = [
        json.dumps({"custom_id": key, "method": "POST", "url": endpoint(config), "body": request_body(req, config)},
                   ensure_ascii=False)
        for key, req in items
    ]
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    uploaded = await client.files.create(file=(f"mmm-{digest}.jsonl", payload), purpose="batch")
    batch = await client.batches.create(
        input_file_id=uploaded.id,
        endpoint=endpoint(config),
        completion_window="24h",
        metadata={"mmm_request_set": digest},
    )
    state = BatchState(batch.id, uploaded.id, config.family, config.model, endpoint(config), keys, time.time())
    path = BatchState.path_for(config.cache_dir, digest)
    write_json(path, asdict(state))
    log.info("batch %s submitted: %d request(s), state in %s", batch.id, len(keys), path)
    return path, state


async def poll(client: Any, state: BatchState) -> tuple[str, dict[str, Completion | Failure]]:
    """``(status, outcomes)``; outcomes are empty while the batch runs, and cover every key once it ended."""
    batch = await client.batches.retrieve(state.batch_id)
    if batch.status in RUNNING:
        return batch.status, {}
    outcomes: dict[str, Completion | Failure] = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id:
            continue
        content = await client.files.content(file_id)
        outcomes.update(parse_output(content.text))
    why = f"batch {state.batch_id} ended '{batch.status}' without an answer for this row"
    if batch.errors and getattr(batch.errors, "data", None):
        why += ": " + "; ".join(redact(str(e.message)) for e in batch.errors.data[:3] if e.message)
    for key in state.keys:
        outcomes.setdefault(key, Failure(t.BATCH_FAILED, why))
    return batch.status, outcomes


def parse_output(text: str) -> dict[str, Completion | Failure]:
    """Output/error file lines -> outcome per custom_id."""
    outcomes: dict[str, Completion | Failure] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            key = row["custom_id"]
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable batch output line skipped: %.80s", line)
            continue
        response = row.get("response") or {}
        status = response.get("status_code")
        if status == 200 and isinstance(response.get("body"), dict):
            outcome = parse_body(response["body"])
        else:
            error = row.get("error") or (response.get("body") or {}).get("error") or {}
            message = error.get("message", "") if isinstance(error, dict) else str(error)
            outcome = Failure(t.BATCH_FAILED, redact(f"HTTP {status}: {message}".strip()))
        outcomes[key] = outcome
    return outcomes
