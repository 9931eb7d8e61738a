"""DVC stage `translate@ITEM`: params.yaml translate.items.ITEM (input, to, out, failed, references) + llm
-> translated rows, failed rows, metrics/translate_ITEM.json."""

import sys

from mmm import params
from mmm.cli import app

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python stages/translate.py ITEM   (an item of params.yaml translate.items)")
    name = sys.argv[1]
    items = params.section("translate")["items"]
    if name not in items:
        sys.exit(f"params.yaml translate.items has no {name!r} (items: {', '.join(items)})")
    item = items[name]
    references = ["--references", item["references"]] if item.get("references") else []
    app(
        [
            "translate", item["input"],
            "--to", item["to"],
            "--out", item["out"],
            "--failed", item["failed"],
            "--metrics", f"metrics/translate_{name}.json",
            "--params", "params.yaml",
            *references,
        ]
    )
