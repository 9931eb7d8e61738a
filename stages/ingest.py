"""DVC stage `ingest`: params.yaml -> data/interim/ingest/{sources,references}.jsonl, metrics/ingest.json."""

from mmm.cli import app

if __name__ == "__main__":
    app(["ingest", "--params", "params.yaml", "--out-dir", "data/interim/ingest", "--metrics", "metrics/ingest.json"])
