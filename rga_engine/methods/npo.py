"""Negative Preference Optimization (Zhang et al., 2024), as the RGA code runs it.

``retain_weight·CE(retain) + forget_weight·(2/β)·mean(softplus(−β·(CE_θ − CE_ref)))``
with per-sample cross-entropies on the forget batch and the poisoned model as reference,
i.e. ``−(2/β)·logsigmoid(β·(CE_θ − CE_ref))``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rga_engine.lazy import F  # torch on first use (rga_engine/lazy.py)

from rga_engine.methods.base import BaseParams, Method, StepInputs


@dataclass
class NPOParams(BaseParams):
    beta: float = 1.0

    def check(self):
        if self.beta <= 0:
            return "beta", "must be > 0"
        return super().check()


class NPO(Method):
    name = "npo"
    Params = NPOParams
    needs_reference = True

    def loss(self, x: StepInputs):
        beta = self.p.beta
        ce = F.cross_entropy(x.forget_logits.float(), x.forget_labels, reduction="none")
        ce_ref = F.cross_entropy(x.ref_forget_logits.float(), x.forget_labels, reduction="none")
        forget = (2.0 / beta) * F.softplus(-beta * (ce - ce_ref)).mean()
        retain = self.retain_loss(x)
        total = self.p.retain_weight * retain + self.p.forget_weight * forget
        return total, {"forget_loss": forget.detach(), "retain_loss": retain.detach(), "forget_ce": ce.mean().detach()}
