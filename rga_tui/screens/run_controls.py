"""The run screen's controls of the run itself: c cancels this app's own run, q quits (asking
first while a run goes on), escape goes back home once it has ended."""

from __future__ import annotations

from rga_tui.screens.modals import ConfirmScreen
from rga_tui.screens.sources import PipelineSource


class RunControls:
    """Mixin of :class:`~rga_tui.screens.run.RunScreen`. The screen provides ``source``, ``state``,
    ``stop_timer()`` and ``_update_status()``, and Textual's ``notify`` and ``app``."""

    @property
    def run_going(self) -> bool:
        # run_finished read: a child process may still be exiting, but nothing is left to lose
        return isinstance(self.source, PipelineSource) and not self.source.done and not self.state.finished

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """c (Cancel) only while this app's own run goes on: not on a finished run, nor on a run
        folder being watched (its process is not this app's to stop)."""
        return self.run_going if action == "cancel_run" else True

    def action_cancel_run(self) -> None:
        src = self.source
        if not isinstance(src, PipelineSource):
            self.notify("Watching a run folder: there is no run here to cancel.", severity="warning")
            return
        if self.state.finished or src.done:
            self.notify("The run has already ended.")
            return
        src.cancel()
        self.state.cancel_requested = True
        self.notify("Cancelling… (the current step finishes first)", severity="warning")
        self._update_status()

    def action_quit_app(self) -> None:
        if not self.run_going:
            self.app.exit()
            return

        def answer(yes: bool | None) -> None:
            if yes:
                if isinstance(self.source, PipelineSource):
                    self.source.cancel()
                self.app.exit()

        self.app.push_screen(ConfirmScreen("A run is going. Cancel it and quit?"), answer)

    def action_back(self) -> None:
        if self.run_going:
            self.notify("A run is going: c cancels it, q quits.", severity="warning")
            return
        self.stop_timer()
        go_home = getattr(self.app, "go_home", None)
        if go_home is not None:
            go_home()
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()
