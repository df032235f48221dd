"""The first module the side-by-side workers' fork server imports (``side_by_side._context``), in
that server alone: it ignores the signals a terminal sends to its whole process group (Ctrl-C, an
SSH drop), as the workers it forks do, so it outlives them for the process's next run. Never
imported anywhere else: it would change that process's signal handlers."""

from rga_engine import side_by_side

side_by_side._ignore_stop_signals()
