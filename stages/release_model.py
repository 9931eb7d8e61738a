"""DVC stage `release_model`: the trained folder and a model card with the test scores, ready for the Hub."""

from _entry import run

run("release-model")
