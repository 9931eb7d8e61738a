"""DVC stage `release_data`: the validated split -> Parquet per configuration and a Hugging Face dataset card."""

from _entry import run

run("release-data")
