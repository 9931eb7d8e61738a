"""``python -m mmm``: the same as the ``mmm`` command."""

from mmm.cli import run

run()
