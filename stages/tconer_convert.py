"""DVC stage `tconer_convert`: Pile-NER-type source -> data/interim/tconer/converted.jsonl."""

from mmm.cli import app

if __name__ == "__main__":
    app(["tconer", "convert", "--params", "params.yaml", "--out", "data/interim/tconer/converted.jsonl",
         "--metrics", "metrics/tconer_convert.json"])
