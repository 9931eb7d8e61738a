"""DVC stage `split`: the MMM dataset -> train and test per (lang, sub-dataset)."""

from _entry import run

run("split")
