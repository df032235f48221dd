"""``python -m rga_tui`` = the ``rga-tui`` command."""

from rga_tui.cli import main

main()
