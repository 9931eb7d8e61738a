"""DVC stage `validate`: GX suites (gx/) over params.yaml validate.checks -> reports/validation/, metrics/validate.json.

Exits non-zero (failing `dvc repro`) when any expectation fails.
"""

from mmm.cli import app

if __name__ == "__main__":
    app(
        [
            "validate",
            "--params", "params.yaml",
            "--gx-dir", "gx",
            "--reports", "reports/validation",
            "--metrics", "metrics/validate.json",
        ]
    )
