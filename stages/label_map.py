"""DVC stage `label_map`: params.yaml label_map -> data/interim/labels/{en,zh}.jsonl, metrics/label_map.json."""

from mmm.cli import app

if __name__ == "__main__":
    app(["label-map", "--params", "params.yaml", "--metrics", "metrics/label_map.json"])
