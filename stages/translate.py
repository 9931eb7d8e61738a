"""DVC stage `translate@ITEM`: params.yaml translate.items.ITEM with the llm section."""

from _entry import item, run

run("translate", "--item", item())
