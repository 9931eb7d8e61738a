"""DVC stage `filter@ITEM`: params.yaml filter.items.ITEM."""

from _entry import item, run

run("filter", "--item", item())
