"""DVC stage `label_map`: Japanese labels -> English/Chinese by the registry tables (label_map)."""

from _entry import run

run("label-map")
