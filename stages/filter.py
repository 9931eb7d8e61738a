"""DVC stage `filter@ITEM`: params.yaml filter.items.ITEM (input, lang, kept, rejected) -> metrics/filter_ITEM.json."""

import sys

from mmm import params
from mmm.cli import app

if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) == 2 else None
    item = params.foreach_item("filter", name)
    app(
        [
            "filter", item["input"],
            "--lang", item["lang"],
            "--kept", item["kept"],
            "--rejected", item["rejected"],
            "--metrics", f"metrics/filter_{name}.json",
        ]
    )
