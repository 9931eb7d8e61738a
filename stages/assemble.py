"""DVC stage `assemble`: the filtered parts (assemble.inputs) -> the MMM dataset and Table 2."""

from _entry import run

run("assemble")
