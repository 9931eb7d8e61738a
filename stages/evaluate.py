"""DVC stage `evaluate`: predictions -> TL/WL/ALL F1 metrics, Table 1, the F1 chart."""

from _entry import run

run("evaluate")
