"""Weighted gradient ascent (WGA), as open-unlearning's ``compute_wga_loss``.

``retain_weight·CE(retain) − forget_weight·mean(w·CE(forget))`` with the per-sample weight
``w = p(y|x)^β = exp(−CE)^β``, detached: rows the model no longer predicts as the target stop
pushing, which keeps the ascent from running away. β = 1 (open-unlearning's default).
"""

from __future__ import annotations

from dataclasses import dataclass

from rga_engine.lazy import F  # torch on first use (rga_engine/lazy.py)

from rga_engine.methods.base import BaseParams, Method, StepInputs


@dataclass
class WGAParams(BaseParams):
    beta: float = 1.0

    def check(self):
        if self.beta < 0:
            return "beta", "must be >= 0"
        return super().check()


class WGA(Method):
    name = "wga"
    Params = WGAParams

    def loss(self, x: StepInputs):
        ce = F.cross_entropy(x.forget_logits.float(), x.forget_labels, reduction="none")
        weight = (-ce).exp().detach() ** self.p.beta
        forget = (weight * ce).mean()
        retain = self.retain_loss(x)
        total = self.p.retain_weight * retain - self.p.forget_weight * forget
        return total, {"forget_loss": forget.detach(), "retain_loss": retain.detach(), "forget_ce": ce.mean().detach(),
                       "weight": weight.mean().detach()}
