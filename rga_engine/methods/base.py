"""The method interface shared by every unlearning method."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from rga_engine.lazy import F, torch  # torch on first use (rga_engine/lazy.py)


@dataclass
class BaseParams:
    forget_weight: float = 1.0
    retain_weight: float = 1.0

    def nonfinite(self) -> str | None:
        """The first float field that is NaN or infinite (every method's numbers must be finite)."""
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                return f.name
        return None

    def check(self) -> tuple[str, str] | None:
        """Return (key, what is allowed) for the first bad value, or None.

        Subclasses check their own fields and end with ``return super().check()``; the finite
        check comes first here too, so a subclass's ``x < 0`` tests never see a NaN unnoticed."""
        bad = self.nonfinite()
        if bad is not None:
            return bad, "must be a finite number (not nan or inf)"
        if self.forget_weight < 0:
            return "forget_weight", "must be >= 0"
        if self.retain_weight < 0:
            return "retain_weight", "must be >= 0"
        return None


@dataclass
class StepInputs:
    forget_logits: torch.Tensor  # [B_f, C]
    forget_labels: torch.Tensor  # [B_f] (the poisoned labels: the target class)
    retain_logits: torch.Tensor  # [B_r, C]
    retain_labels: torch.Tensor  # [B_r]
    ref_forget_logits: torch.Tensor | None = None  # poisoned model's logits on this forget batch
    model: torch.nn.Module | None = None


class Method:
    """One unlearning objective. Subclasses set ``Params`` and implement :meth:`loss`."""

    name = "base"
    Params: type = BaseParams  # a dataclass with check(); BaseParams or its own (pure_ga, finetune)
    needs_reference = False  # needs the poisoned model's logits on the forget set
    needs_base = False  # needs the pre-trained weights (before poisoning)
    lr: float | None = None  # its own peak unlearning lr ([methods.<name>] lr); None: unlearn.lr

    def __init__(self, params: BaseParams):
        self.p = params

    def prepare(self, model: torch.nn.Module, base_state: dict[str, torch.Tensor] | None) -> str | None:
        """Called once before the first step; may return a line for the run's log."""

    def retain_loss(self, x: StepInputs) -> torch.Tensor:
        return F.cross_entropy(x.retain_logits.float(), x.retain_labels)

    def loss(self, x: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss to minimise and the step's statistics as detached 0-d tensors (never
        ``.item()``: the loop reads them on logging steps only, one host sync for all)."""
        raise NotImplementedError
