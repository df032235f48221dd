"""Robust Gradient Ascent (Zhao et al., ICLR 2026).

``L = retain_weight·CE(retain) − λ·forget_weight·CE(forget) + β·Σ_tensors ‖θ − θ_base‖₂``

* ``λ = exp(−KL)^α``: one detached scalar per forget batch.  At the first step the model *is*
  the poisoned model, so KL = 0 and λ = 1 (plain GA); λ decays as the forget predictions move
  away from the poisoned model's, which stops the ascent before it re-attaches the trigger to
  another class.  ``kl_direction = "poisoned_current"`` is the authors' code,
  ``KL(f_poisoned ‖ f_current)`` (batch mean); ``"current_poisoned"`` is the poster's formula.
* ``θ_base``: the pre-trained weights before poisoning, encoder only (the classification head
  is left out).  The penalty is a sum of per-tensor L2 norms, not squared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rga_engine.methods.base import BaseParams, Method, StepInputs
from rga_engine.models import is_head

KL_DIRECTIONS = ("poisoned_current", "current_poisoned")


@dataclass
class RGAParams(BaseParams):
    alpha: float = 2.0
    beta: float = 0.05
    kl_direction: str = "poisoned_current"

    def check(self):
        if self.alpha < 0:
            return "alpha", "must be >= 0"
        if self.beta < 0:
            return "beta", "must be >= 0"
        if self.kl_direction not in KL_DIRECTIONS:
            return "kl_direction", f"allowed values are {', '.join(KL_DIRECTIONS)}"
        return super().check()


def kl_div(forget_logits: torch.Tensor, ref_logits: torch.Tensor, direction: str) -> torch.Tensor:
    """Batch-mean KL between the current and the poisoned model's predictive distributions."""
    logp_cur = F.log_softmax(forget_logits.float(), dim=-1)
    logp_ref = F.log_softmax(ref_logits.float(), dim=-1)
    if direction == "poisoned_current":  # KL(poisoned || current)
        return F.kl_div(logp_cur, logp_ref, reduction="batchmean", log_target=True)
    return F.kl_div(logp_ref, logp_cur, reduction="batchmean", log_target=True)  # KL(current || poisoned)


def rga_lambda(kl, alpha: float):
    """``λ = exp(−KL)^α``. A tensor KL gives a detached float64 0-d tensor on its device (no host
    sync; float64 as ``math.exp`` on the read-back value gave), a float a float."""
    if isinstance(kl, torch.Tensor):
        return torch.exp(-kl.detach().double()) ** alpha
    return math.exp(-kl) ** alpha


class RGA(Method):
    name = "rga"
    Params = RGAParams
    needs_reference = True
    needs_base = True

    def __init__(self, params: RGAParams):
        super().__init__(params)
        self._params: list[torch.nn.Parameter] = []
        self._base: list[torch.Tensor] = []

    def prepare(self, model, base_state):
        self._params, self._base = [], []
        if not base_state or self.p.beta == 0:
            return
        for name, param in model.named_parameters():
            if not param.requires_grad or is_head(name):
                continue
            key = name if name in base_state else name.removeprefix("module.")
            if key in base_state:
                self._params.append(param)
                self._base.append(base_state[key].to(device=param.device, dtype=param.dtype))

    def penalty(self) -> torch.Tensor:
        if not self._params:
            return torch.zeros(())
        diffs = torch._foreach_sub(self._params, self._base)
        return torch.stack(torch._foreach_norm(diffs)).float().sum()

    def loss(self, x: StepInputs):
        forget = F.cross_entropy(x.forget_logits.float(), x.forget_labels)
        with torch.no_grad():
            kl = kl_div(x.forget_logits, x.ref_forget_logits, self.p.kl_direction)
        lam = rga_lambda(kl, self.p.alpha)  # detached: a weight, not a path for the gradient
        retain = self.retain_loss(x)
        pen = self.penalty().to(retain.device)
        ascent = (lam * self.p.forget_weight).to(forget.dtype)  # rounded as a Python float would be
        total = self.p.retain_weight * retain - ascent * forget + self.p.beta * pen
        return total, {
            "forget_loss": forget.detach(),
            "retain_loss": retain.detach(),
            "lambda": lam,
            "kl": kl,
            "penalty": pen.detach(),
        }
