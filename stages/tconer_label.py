"""DVC stage `tconer_label`: LLM topic labels + human overrides -> data/interim/tconer/en.jsonl."""

from mmm.cli import app

if __name__ == "__main__":
    app(["tconer", "label", "--params", "params.yaml", "--converted", "data/interim/tconer/converted.jsonl",
         "--out", "data/interim/tconer/en.jsonl", "--failed", "data/interim/tconer/label_failed.jsonl",
         "--metrics", "metrics/tconer_label.json"])
