"""DVC stage `funnel`: the stages' metrics -> rows per stage and language (plot data)."""

from _entry import run

run("funnel")
