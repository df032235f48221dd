"""Pure gradient ascent: ``−forget_weight·CE(forget)``, no retain term.

The retain batch is still drawn and its CE reported (``retain_loss``, no gradient), so the
curves show what the ascent does to the clean rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from rga_engine.lazy import F, torch  # torch on first use (rga_engine/lazy.py)

from rga_engine.methods.base import Method, StepInputs


@dataclass
class PureGAParams:
    forget_weight: float = 1.0

    def check(self) -> tuple[str, str] | None:
        if self.forget_weight < 0:
            return "forget_weight", "must be >= 0"
        return None


class PureGA(Method):
    name = "pure_ga"
    Params = PureGAParams

    def loss(self, x: StepInputs):
        forget = F.cross_entropy(x.forget_logits.float(), x.forget_labels)
        with torch.no_grad():
            retain = self.retain_loss(x)
        return -self.p.forget_weight * forget, {"forget_loss": forget.detach(), "retain_loss": retain.detach()}
