"""``python -m mmm.cli``: the same as the ``mmm`` command."""

from mmm.cli import run

run()
