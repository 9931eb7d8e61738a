"""DVC stage `translate@ITEM`: params.yaml translate.items.ITEM (input, to, out, failed, references) + llm
-> translated rows, failed rows, metrics/translate_ITEM.json."""

import sys

from mmm import params
from mmm.cli import app

if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) == 2 else None
    item = params.foreach_item("translate", name)
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
