"""DVC stage `predict`, started by `accelerate launch --config_file ${predict.accelerate_config}`:
models/oiellm + data/processed/split/test.jsonl -> data/processed/predictions.jsonl, metrics/predict.json."""

from mmm.cli import app

if __name__ == "__main__":
    app(["predict", "--params", "params.yaml", "--test", "data/processed/split/test.jsonl",
         "--out", "data/processed/predictions.jsonl", "--metrics", "metrics/predict.json"])
