"""rga-tui: the terminal front end (Textual app and command line) of the ``rga_engine``.

Importing this package imports nothing heavy: the command line (``rga_tui.cli``) loads Textual
only for the interactive commands.
"""

__version__ = "0.1.0"
