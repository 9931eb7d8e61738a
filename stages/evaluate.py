"""DVC stage `evaluate`: data/processed/predictions.jsonl -> metrics/evaluate.json, reports/table1.md,
reports/f1_by_subset.png, with the knobs of the `evaluate` section of params.yaml."""

from mmm.cli import app
from mmm.params import section

PREDICTIONS = "data/processed/predictions.jsonl"
OUTPUTS = ["--out", "metrics/evaluate.json", "--report", "reports/table1.md", "--plot", "reports/f1_by_subset.png"]


def options(params: dict) -> list[str]:
    """``--some-key value`` for each param (the CLI rejects unknown ones by name); null means empty."""
    args: list[str] = []
    for key, value in params.items():
        args += [f"--{key.replace('_', '-')}", "" if value is None else str(value)]
    return args


if __name__ == "__main__":
    app(["evaluate", PREDICTIONS, *OUTPUTS, *options(section("evaluate"))])
