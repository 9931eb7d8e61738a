"""Run telemetry (times, throughput, cache hits, requests, retries): the untracked run log.

Tracked metrics (``metrics/``) hold results only, so two runs with the same inputs leave git
clean and ``dvc metrics diff`` shows only what changed in the results. What a run cost in time
and requests goes here instead: one JSON file per stage (or stage item) under the log folder
(``logs/`` by default, ignored by git and DVC), replaced by each run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write(log_dir: str | Path | None, name: str, data: dict[str, Any]) -> Path | None:
    """Write ``data`` to ``<log_dir>/<name>.json`` (nothing when ``log_dir`` is None); return the path."""
    if log_dir is None:
        return None
    path = Path(log_dir) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path
