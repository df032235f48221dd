"""SimNPO (Fan et al., 2024): NPO without a reference model, length-normalised.

``retain_weight·CE(retain) + forget_weight·mean(−(2/β)·logσ(−(β/|y|)·log p(y|x) − γ))``

For a classifier the "response" is one label, |y| = 1, so ``−log p(y|x)`` is the per-sample CE
and the forget term is ``−(2/β)·logσ(β·CE − γ)``: gradient ascent on CE weighted by
``2σ(γ − β·CE)``, which fades as the forget rows stop being predicted as the target.
open-unlearning writes ``−(2/β)·logσ(β·(CE/|y| − δ))``, i.e. δ = γ/β; its defaults
(β = 4.5, δ = 0) are ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from rga_engine.lazy import F  # torch on first use (rga_engine/lazy.py)

from rga_engine.methods.base import BaseParams, Method, StepInputs


@dataclass
class SimNPOParams(BaseParams):
    beta: float = 4.5
    gamma: float = 0.0

    def check(self):
        if self.beta <= 0:
            return "beta", "must be > 0"
        return super().check()


class SimNPO(Method):
    name = "simnpo"
    Params = SimNPOParams

    def loss(self, x: StepInputs):
        beta, gamma = self.p.beta, self.p.gamma
        ce = F.cross_entropy(x.forget_logits.float(), x.forget_labels, reduction="none")  # −log p(y|x), |y| = 1
        forget = (-(2.0 / beta) * F.logsigmoid(beta * ce - gamma)).mean()
        retain = self.retain_loss(x)
        total = self.p.retain_weight * retain + self.p.forget_weight * forget
        return total, {"forget_loss": forget.detach(), "retain_loss": retain.detach(), "forget_ce": ce.mean().detach()}
