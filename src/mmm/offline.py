"""Keep every run offline unless the user turns hub access on in params.

``datasets`` and ``huggingface_hub`` contact the network even for local files unless these
variables are set, so they are forced on import of the package and only lifted by
``allow_hub(True)`` (driven by the ``hub.allow_network`` param).
"""

from __future__ import annotations

import os

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def enforce() -> None:
    for name in OFFLINE_VARS:
        os.environ[name] = "1"


def allow_hub(allowed: bool) -> None:
    """Set the offline variables from the params switch (before ``datasets`` is imported)."""
    for name in OFFLINE_VARS:
        os.environ[name] = "0" if allowed else "1"
