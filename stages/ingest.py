"""DVC stage `ingest`: params.yaml ingest -> sources, references, metrics."""

from _entry import run

run("ingest")
