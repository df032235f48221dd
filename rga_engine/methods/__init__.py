"""Unlearning methods, one small file each, behind a registry keyed by name.

A method turns one unlearning step's logits into a loss::

    method = build("rga", {"alpha": 2.0})
    method.prepare(model, base_state)          # once, before the first step
    loss, stats = method.loss(StepInputs(...))  # every step; stats are detached 0-d tensors, read on logging steps

Add a method: write ``methods/<name>.py`` with a ``Params`` dataclass (subclass of
:class:`~rga_engine.methods.base.BaseParams`) and a :class:`~rga_engine.methods.base.Method`
subclass, then register it below; take torch and ``F`` from :mod:`rga_engine.lazy` (imported on
first use), as the others do: every preset's validation reads the ``Params`` and needs no torch
(``tests/test_boundaries.py``). Every method also takes ``lr``, its own peak unlearning lr in
place of ``unlearn.lr`` (:data:`OWN_LR`; ``method.lr``, None when not set).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from rga_engine.errors import ConfigError
from rga_engine.methods.base import BaseParams, Method, StepInputs
from rga_engine.methods.finetune import Finetune
from rga_engine.methods.ga import GA
from rga_engine.methods.npo import NPO
from rga_engine.methods.pure_ga import PureGA
from rga_engine.methods.rga import RGA
from rga_engine.methods.simnpo import SimNPO
from rga_engine.methods.wga import WGA

REGISTRY: dict[str, type[Method]] = {
    "ga": GA,
    # GradDiff = GA with explicit forget/retain weights; same code, its own defaults.
    "graddiff": GA,
    "npo": NPO,
    "rga": RGA,
    # baselines the unlearning literature compares against
    "pure_ga": PureGA,  # −CE(forget), no retain term
    "simnpo": SimNPO,  # reference-free, length-normalised NPO (Fan et al., 2024)
    "wga": WGA,  # forget CE weighted by p(y|x)^β (open-unlearning)
    "finetune": Finetune,  # CE(retain) only
}

DEFAULTS: dict[str, dict[str, Any]] = {
    "graddiff": {"retain_weight": 1.0, "forget_weight": 1.0},
}


# every method's own peak unlearning lr (``[methods.<name>] lr``) in place of ``unlearn.lr``; not a
# field of any Params (its default is "unlearn.lr"), so it is in a method's dict only when set
OWN_LR = "lr"


def _own_lr(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"methods.{name}.{OWN_LR} = {v!r}: expected float")
    if not math.isfinite(v) or not 0.0 <= v <= 1.0:
        raise ConfigError(f"methods.{name}.{OWN_LR} = {float(v)!r}: must be in [0, 1] "
                          f"(this method's peak unlearning lr; not set: unlearn.lr)")
    return float(v)


def method_params(name: str, raw: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validated, complete parameter dict for a method (defaults filled in; ``lr`` only when set)."""
    if name not in REGISTRY:
        raise ConfigError(f"methods.{name}: unknown method (allowed: {', '.join(REGISTRY)})")
    cls = REGISTRY[name].Params
    merged = {**DEFAULTS.get(name, {}), **(raw or {})}
    own_lr = _own_lr(name, merged.pop(OWN_LR)) if OWN_LR in merged else None
    allowed = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    defaults = cls()
    for k, v in merged.items():
        if k not in allowed:
            raise ConfigError(f"methods.{name}.{k}: unknown key (allowed: {', '.join(allowed + [OWN_LR])})")
        d = getattr(defaults, k)
        if isinstance(d, bool):
            ok = isinstance(v, bool)
        elif isinstance(d, (int, float)):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
            v = type(d)(v) if ok else v
        else:
            ok = isinstance(v, type(d))
        if not ok:
            raise ConfigError(f"methods.{name}.{k} = {v!r}: expected {type(d).__name__}")
        kwargs[k] = v
    params = cls(**kwargs)
    # before the method's own checks: NaN passes every "x < 0" test (every Params dataclass, a
    # BaseParams subclass or not)
    bad = next((f.name for f in dataclasses.fields(params)
                if isinstance(getattr(params, f.name), float) and not math.isfinite(getattr(params, f.name))), None)
    problem = (bad, "must be a finite number (not nan or inf)") if bad is not None else params.check()
    if problem:
        key, what = problem
        raise ConfigError(f"methods.{name}.{key} = {getattr(params, key)!r}: {what}")
    out = dataclasses.asdict(params)
    if own_lr is not None:
        out[OWN_LR] = own_lr
    return out


def build(name: str, raw: dict[str, Any] | None = None) -> Method:
    params = method_params(name, raw)
    lr = params.pop(OWN_LR, None)
    m = REGISTRY[name](REGISTRY[name].Params(**params))
    m.name = name
    m.lr = lr
    return m


__all__ = ["OWN_LR", "REGISTRY", "BaseParams", "Method", "StepInputs", "build", "method_params"]
