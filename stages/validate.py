"""DVC stage `validate`: the Great Expectations gate over validate.checks; fails `dvc repro` on any failed expectation."""

from _entry import run

run("validate")
