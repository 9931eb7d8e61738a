"""DVC stage `filter@ITEM`: params.yaml filter.items.ITEM (input, lang, kept, rejected) -> metrics/filter_ITEM.json."""

import sys

from mmm import params
from mmm.cli import app

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python stages/filter.py ITEM   (an item of params.yaml filter.items)")
    name = sys.argv[1]
    items = params.section("filter")["items"]
    if name not in items:
        sys.exit(f"params.yaml filter.items has no {name!r} (items: {', '.join(items)})")
    item = items[name]
    app(
        [
            "filter", item["input"],
            "--lang", item["lang"],
            "--kept", item["kept"],
            "--rejected", item["rejected"],
            "--metrics", f"metrics/filter_{name}.json",
        ]
    )
