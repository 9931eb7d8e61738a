"""DVC stage `split`: data/processed/mmm.jsonl -> data/processed/split/{train,test}.jsonl, metrics/split.json."""

from mmm.cli import app

if __name__ == "__main__":
    app(["split", "data/processed/mmm.jsonl", "--out-dir", "data/processed/split", "--params", "params.yaml",
         "--metrics", "metrics/split.json"])
