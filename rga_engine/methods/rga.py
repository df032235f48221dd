"""Robust Gradient Ascent (Zhao et al., ICLR 2026).

``L = retain_weight·CE(retain) − λ·forget_weight·CE(forget) + β·Σ_tensors ‖θ − θ_base‖₂``

* ``λ = exp(−KL)^α``: one detached scalar per forget batch (with several processes, the KL of
  the whole global batch: the ranks' KLs are averaged on the device).  At the first step the model *is*
  the poisoned model, so KL = 0 and λ = 1 (plain GA); λ decays as the forget predictions move
  away from the poisoned model's, which stops the ascent before it re-attaches the trigger to
  another class.  ``kl_direction = "poisoned_current"`` is the authors' code,
  ``KL(f_poisoned ‖ f_current)`` (batch mean); ``"current_poisoned"`` is the poster's formula.
  ``lambda_scope = "row"`` (not the paper's) gives each forget row its own
  ``λ_i = exp(−KL_i)^α`` and ascends ``mean(λ_i·CE_i)``: a row that has left the poisoned
  prediction stops being pushed while the rows of the same batch that still carry the backdoor
  keep their ascent (the batch-mean KL is dominated by the rows that have flipped); with ``α``
  and a confident poisoned model this is close to WGA's ``p(y|x)^β`` weight plus the L2 anchor.
* ``θ_base``: the pre-trained weights before poisoning, encoder only (the classification head
  is left out).  The penalty is a sum of per-tensor L2 norms, not squared.

The anchor is counted, not assumed: :meth:`RGA.prepare` matches every trainable non-head tensor
to θ_base by name, returns a line saying how many it anchored (the pipeline logs it), and with
``β > 0`` refuses to start (:class:`AnchorError`, one line naming ``methods.rga.beta``) when
fewer than all of them match -- a wrapper that renames parameters would otherwise turn the L2
term silently into 0.  FSDP is refused the same way (its parameters are flattened shards; use
DDP).  With LoRA (``model.lora``) the pre-trained weights are frozen and only the adapters train:
the anchor of an adapted weight ``W = W₀ + s·B·A`` is its distance from the pre-trained
``W₀``, ``‖s·B·A‖_F`` -- the adapters' distance from zero, one term per adapted weight (0 before
poisoning, since B starts at 0); any other trainable non-head tensor is anchored by name.
The L2 term's autograd Function and the LoRA / FSDP finders are in ``methods/anchor.py``, imported
when a run prepares RGA: reading :class:`RGAParams` (every preset's validation) needs no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rga_engine.lazy import F, LazyModule, torch  # torch on first use (rga_engine/lazy.py)
from rga_engine.methods.base import BaseParams, Method, StepInputs

# modules that import torch at the top, read on first use as torch is
anchor = LazyModule("rga_engine.methods.anchor")  # the L2 term's Function, the LoRA / FSDP finders
distributed = LazyModule("rga_engine.distributed")  # the global batch's KL over several processes
models = LazyModule("rga_engine.models")  # which parameters are the classification head

KL_DIRECTIONS = ("poisoned_current", "current_poisoned")
LAMBDA_SCOPES = ("batch", "row")


@dataclass
class RGAParams(BaseParams):
    alpha: float = 2.0
    beta: float = 0.05
    kl_direction: str = "poisoned_current"
    lambda_scope: str = "batch"  # the paper's one λ per forget batch; "row": one per forget row

    def check(self):
        if self.alpha < 0:
            return "alpha", "must be >= 0"
        if self.beta < 0:
            return "beta", "must be >= 0"
        if self.kl_direction not in KL_DIRECTIONS:
            return "kl_direction", f"allowed values are {', '.join(KL_DIRECTIONS)}"
        if self.lambda_scope not in LAMBDA_SCOPES:
            return "lambda_scope", f"allowed values are {', '.join(LAMBDA_SCOPES)}"
        return super().check()


def kl_div(forget_logits: torch.Tensor, ref_logits: torch.Tensor, direction: str, per_row: bool = False) -> torch.Tensor:
    """Batch-mean KL between the current and the poisoned model's predictive distributions
    (``per_row``: one KL per row, ``[B]``)."""
    logp_cur = F.log_softmax(forget_logits.float(), dim=-1)
    logp_ref = F.log_softmax(ref_logits.float(), dim=-1)
    reduction = "none" if per_row else "batchmean"
    if direction == "poisoned_current":  # KL(poisoned || current)
        kl = F.kl_div(logp_cur, logp_ref, reduction=reduction, log_target=True)
    else:  # KL(current || poisoned)
        kl = F.kl_div(logp_ref, logp_cur, reduction=reduction, log_target=True)
    return kl.sum(-1) if per_row else kl


def rga_lambda(kl, alpha: float):
    """``λ = exp(−KL)^α``. A tensor KL gives a detached float64 0-d tensor on its device (no host
    sync; float64 as ``math.exp`` on the read-back value gave), a float a float."""
    if isinstance(kl, torch.Tensor):
        return torch.exp(-kl.detach().double()) ** alpha
    return math.exp(-kl) ** alpha


class AnchorError(ValueError):
    """RGA cannot anchor the weights it would train (one line, naming ``methods.rga.beta``)."""


class RGA(Method):
    name = "rga"
    Params = RGAParams
    needs_reference = True
    needs_base = True

    def __init__(self, params: RGAParams):
        super().__init__(params)
        self._params: list[torch.nn.Parameter] = []
        self._base: list[torch.Tensor] = []
        self._lora: list[tuple[torch.nn.Parameter, torch.nn.Parameter, float]] = []

    def prepare(self, model, base_state) -> str | None:
        """Anchor every trainable non-head tensor (above); return the line to log (saying so when
        λ is per row, which is not the paper's RGA)."""
        note = self._anchor(model, base_state)
        if self.p.lambda_scope == "row":
            note += "; λ per forget row (methods.rga.lambda_scope = \"row\", not the paper's one λ per batch)"
        return note

    def _anchor(self, model, base_state) -> str:
        self._params, self._base, self._lora = [], [], []
        if self.p.beta == 0:
            return "rga: methods.rga.beta = 0: no L2 anchor"
        key = f"methods.rga.beta = {self.p.beta!r}"
        if anchor.is_sharded(model):
            raise AnchorError(f"{key}: RGA's L2 anchor needs whole parameters and FSDP shards them; "
                              "launch with DDP (accelerate launch --multi_gpu) or set methods.rga.beta = 0")
        self._lora = [(a, b, s) for a, b, s in anchor.lora_layers(model) if a.requires_grad or b.requires_grad]
        in_lora = {id(t) for a, b, _ in self._lora for t in (a, b)}
        base_state = base_state or {}
        wanted, missing = 0, []
        for name, param in model.named_parameters():
            if not param.requires_grad or models.is_head(name) or id(param) in in_lora:
                continue
            wanted += 1
            key_ = name if name in base_state else name.removeprefix("module.")
            if key_ in base_state and base_state[key_].shape == param.shape:
                self._params.append(param)
                self._base.append(base_state[key_].to(device=param.device, dtype=param.dtype))
            else:
                missing.append(name)
        if missing:
            raise AnchorError(f"{key}: {len(missing)} of {wanted} trainable encoder tensors have no pre-trained "
                              f"weight θ_base of the same name and shape (first: {missing[0]}), so the L2 anchor "
                              "would be partial; refusing to run RGA (set methods.rga.beta = 0 for no anchor)")
        if not (self._params or self._lora):
            raise AnchorError(f"{key}: the model has no trainable encoder tensor to anchor, so the L2 term would "
                              "be 0; refusing to run RGA (set methods.rga.beta = 0 for no anchor)")
        lora = f" + {len(self._lora)} LoRA adapters (‖s·B·A‖ from the pre-trained weights)" if self._lora else ""
        return f"rga: L2 anchor on {len(self._params)} encoder tensors{lora}, θ_base = the pre-trained weights"

    @property
    def anchored(self) -> int:
        """How many tensors the L2 term pulls back (a LoRA adapter counts once)."""
        return len(self._params) + len(self._lora)

    def penalty(self) -> torch.Tensor:
        terms = [torch.linalg.matrix_norm(s * (b @ a)).float() for a, b, s in self._lora]
        if self._params:
            terms.insert(0, anchor.AnchorDistance.apply(self._base, *self._params))
        if not terms:
            return torch.zeros(())
        return terms[0] if len(terms) == 1 else torch.stack(terms).sum()

    def loss(self, x: StepInputs):
        forget, pushed, lam, kl = self._ascent(x)
        retain = self.retain_loss(x)
        pen = self.penalty().to(retain.device)
        total = self.p.retain_weight * retain - pushed + self.p.beta * pen
        return total, {
            "forget_loss": forget.detach(),
            "retain_loss": retain.detach(),
            "lambda": lam,
            "kl": kl,
            "penalty": pen.detach(),
        }

    def _ascent(self, x: StepInputs):
        """``(mean forget CE, the ascent term the loss subtracts, λ, KL)``: ``λ·forget_weight·CE``
        with the paper's one λ per batch, ``forget_weight·mean(λ_i·CE_i)`` with ``lambda_scope =
        "row"`` (λ and KL then the batch's means). Every λ is detached: a weight, not a path for the
        gradient."""
        if self.p.lambda_scope == "row":
            ce = F.cross_entropy(x.forget_logits.float(), x.forget_labels, reduction="none")
            with torch.no_grad():  # each row's own KL: nothing to share between processes
                kl = kl_div(x.forget_logits, x.ref_forget_logits, self.p.kl_direction, per_row=True)
                lam = torch.exp(-kl) ** self.p.alpha
            return ce.mean(), self.p.forget_weight * (lam * ce).mean(), lam.mean().double(), kl.mean()
        forget = F.cross_entropy(x.forget_logits.float(), x.forget_labels)
        with torch.no_grad():
            # several processes: the KL of the whole global batch (the mean of the ranks' means)
            kl = distributed.mean_over_ranks(kl_div(x.forget_logits, x.ref_forget_logits, self.p.kl_direction))
        lam = rga_lambda(kl, self.p.alpha)
        ascent = (lam * self.p.forget_weight).to(forget.dtype)  # rounded as a Python float would be
        return forget, ascent * forget, lam, kl
