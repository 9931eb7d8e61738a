"""DVC stage `assemble`: filtered parts -> data/processed/mmm.jsonl, metrics/dataset.json, reports/table2.md."""

from mmm.cli import app

if __name__ == "__main__":
    app(["assemble", "--params", "params.yaml", "--out", "data/processed/mmm.jsonl",
         "--metrics", "metrics/dataset.json", "--report", "reports/table2.md"])
