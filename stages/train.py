"""DVC stage `train` (started by `accelerate launch --config_file ${train.accelerate_config}`):
data/processed/split/train.jsonl + the base model -> models/oiellm, metrics/train.json, the loss curve."""

from mmm.cli import app

if __name__ == "__main__":
    app(["train", "--params", "params.yaml", "--train", "data/processed/split/train.jsonl", "--out", "models/oiellm",
         "--metrics", "metrics/train.json", "--curve", "metrics/train_loss.csv", "--plot", "reports/train_loss.png"])
