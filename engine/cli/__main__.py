"""``python -m engine.cli``: the same as the ``conveyor`` command."""

from engine.cli import main

main()
