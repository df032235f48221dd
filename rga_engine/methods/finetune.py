"""Clean fine-tuning on the retain set only: ``retain_weight·CE(retain)``.

The forget batch only sets the pace (one epoch = one pass over D_p, as for every method); its
CE is reported (``forget_loss``, no gradient).
"""

from __future__ import annotations

from dataclasses import dataclass

from rga_engine.lazy import F, torch  # torch on first use (rga_engine/lazy.py)

from rga_engine.methods.base import Method, StepInputs


@dataclass
class FinetuneParams:
    retain_weight: float = 1.0

    def check(self) -> tuple[str, str] | None:
        if self.retain_weight <= 0:
            return "retain_weight", "must be > 0"
        return None


class Finetune(Method):
    name = "finetune"
    Params = FinetuneParams

    def loss(self, x: StepInputs):
        retain = self.retain_loss(x)
        with torch.no_grad():
            forget = F.cross_entropy(x.forget_logits.float(), x.forget_labels)
        return self.p.retain_weight * retain, {"forget_loss": forget.detach(), "retain_loss": retain.detach()}
