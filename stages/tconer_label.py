"""DVC stage `tconer_label`: LLM topic labels + human overrides -> tconer.labelled."""

from _entry import run

run("tconer", "label")
