"""DVC stage `tconer_convert`: Pile-NER-type source -> tconer.converted."""

from _entry import run

run("tconer", "convert")
