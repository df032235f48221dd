"""Gradient ascent (GA / GradDiff): ``retain_weight·CE(retain) − forget_weight·CE(forget)``."""

from __future__ import annotations

from rga_engine.lazy import F  # torch on first use (rga_engine/lazy.py)

from rga_engine.methods.base import BaseParams, Method, StepInputs


class GA(Method):
    name = "ga"
    Params = BaseParams

    def loss(self, x: StepInputs):
        forget = F.cross_entropy(x.forget_logits.float(), x.forget_labels)
        retain = self.retain_loss(x)
        total = self.p.retain_weight * retain - self.p.forget_weight * forget
        return total, {"forget_loss": forget.detach(), "retain_loss": retain.detach()}
