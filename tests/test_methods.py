"""Each unlearning method's loss on hand-made logits matches its formula."""

import math

import pytest
import torch

from rga_engine.config import ConfigError
from rga_engine.methods import REGISTRY, StepInputs, build, method_params
from rga_engine.methods.rga import kl_div, rga_lambda
from rga_engine.models import is_head

FL = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 3.0]])
FY = torch.tensor([1, 1, 1])
RL = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
RY = torch.tensor([0, 1])
REF = torch.tensor([[-3.0, 4.0], [-2.0, 2.5], [-4.0, 5.0]])


def ce(logits, y):
    # by hand: -log softmax
    out = []
    for row, t in zip(logits.tolist(), y.tolist()):
        z = math.log(sum(math.exp(v) for v in row))
        out.append(z - row[t])
    return out


def test_registry_has_the_paper_methods():
    assert {"ga", "npo", "rga", "graddiff"} <= set(REGISTRY)


def test_registry_has_the_baselines_with_display_names():
    from rga_engine.report import display_name

    assert {"pure_ga", "simnpo", "wga", "finetune"} <= set(REGISTRY)
    names = [display_name(m) for m in ("pure_ga", "simnpo", "wga", "finetune", "graddiff")]
    assert names == ["Pure GA", "SimNPO", "WGA", "Fine-tune", "GradDiff"]
    from rga_engine.report import MODEL_NAMES

    assert set(REGISTRY) <= set(MODEL_NAMES)  # every method has a display name (tables, app)


def test_ga_is_retain_minus_forget():
    m = build("ga")
    loss, stats = m.loss(StepInputs(FL, FY, RL, RY))
    want = sum(ce(RL, RY)) / 2 - sum(ce(FL, FY)) / 3
    assert loss.item() == pytest.approx(want, rel=1e-6)
    assert stats["forget_loss"] == pytest.approx(sum(ce(FL, FY)) / 3, rel=1e-6)
    assert stats["retain_loss"] == pytest.approx(sum(ce(RL, RY)) / 2, rel=1e-6)


def test_graddiff_weights():
    m = build("graddiff", {"retain_weight": 2.0, "forget_weight": 0.5})
    loss, _ = m.loss(StepInputs(FL, FY, RL, RY))
    want = 2.0 * sum(ce(RL, RY)) / 2 - 0.5 * sum(ce(FL, FY)) / 3
    assert loss.item() == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("beta", [1.0, 0.1])
def test_npo_formula(beta):
    m = build("npo", {"beta": beta})
    loss, stats = m.loss(StepInputs(FL, FY, RL, RY, REF))
    cur, ref = ce(FL, FY), ce(REF, FY)
    # -(2/β)·logsigmoid(β·(CE_θ − CE_ref)), averaged
    forget = sum(-(2 / beta) * math.log(1 / (1 + math.exp(-beta * (c - r)))) for c, r in zip(cur, ref)) / 3
    assert stats["forget_loss"] == pytest.approx(forget, rel=1e-5)
    assert loss.item() == pytest.approx(sum(ce(RL, RY)) / 2 + forget, rel=1e-5)


def test_npo_at_reference_is_2_over_beta_log2():
    m = build("npo", {"beta": 1.0})
    _, stats = m.loss(StepInputs(REF, FY, RL, RY, REF))
    assert stats["forget_loss"] == pytest.approx(2 * math.log(2), rel=1e-6)


def _kl(p_logits, q_logits):
    out = []
    for a, b in zip(p_logits.tolist(), q_logits.tolist()):
        pa = [math.exp(v) / sum(math.exp(x) for x in a) for v in a]
        pb = [math.exp(v) / sum(math.exp(x) for x in b) for v in b]
        out.append(sum(x * math.log(x / y) for x, y in zip(pa, pb)))
    return sum(out) / len(out)


def test_kl_directions():
    assert kl_div(FL, REF, "poisoned_current").item() == pytest.approx(_kl(REF, FL), rel=1e-5)
    assert kl_div(FL, REF, "current_poisoned").item() == pytest.approx(_kl(FL, REF), rel=1e-5)


def test_rga_formula_with_penalty():
    torch.manual_seed(0)
    model = torch.nn.Sequential()
    model.add_module("encoder", torch.nn.Linear(3, 2))
    model.add_module("classifier", torch.nn.Linear(2, 2))
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.encoder.weight.add_(0.5)
        model.encoder.bias.sub_(0.25)
        model.classifier.weight.add_(10.0)  # the head is not part of the L2 pull
    m = build("rga", {"alpha": 2.0, "beta": 0.05})
    m.prepare(model, base)
    loss, stats = m.loss(StepInputs(FL, FY, RL, RY, REF, model))
    kl = _kl(REF, FL)
    lam = math.exp(-kl) ** 2
    pen = math.sqrt(6 * 0.25) + math.sqrt(2 * 0.0625)
    want = sum(ce(RL, RY)) / 2 - lam * sum(ce(FL, FY)) / 3 + 0.05 * pen
    assert stats["lambda"] == pytest.approx(lam, rel=1e-5)
    assert stats["kl"] == pytest.approx(kl, rel=1e-5)
    assert stats["penalty"] == pytest.approx(pen, rel=1e-5)
    assert loss.item() == pytest.approx(want, rel=1e-5)
    # gradient flows into the encoder through the penalty, λ is detached
    loss.backward()
    assert model.encoder.weight.grad is not None


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_anchor_distance_gives_autograds_value_and_gradient_bit_for_bit(dtype):
    """RGA's L2 term has its own backward (AnchorDistance): the value and the gradient must be
    exactly what autograd gives through _foreach_sub / _foreach_norm, with other terms of the loss
    accumulating into the same .grad, and 0 (not NaN) for a tensor still at its base weights."""
    from rga_engine.methods.anchor import AnchorDistance

    torch.manual_seed(0)
    shapes = [(300, 16), (16,), (16, 64), (7,)]
    base = [torch.randn(s).to(dtype) for s in shapes]
    ours = [torch.nn.Parameter(b + 1e-2 * torch.randn(b.shape).to(dtype)) for b in base]
    ours[3] = torch.nn.Parameter(base[3].clone())  # not moved from its base: norm 0
    ref = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    x = torch.randn(16).to(dtype)

    def loss(ps, pen):
        other = sum((p.reshape(-1)[:16] * x[: p.numel()]).float().sum() for p in ps)
        return other + 0.05 * pen

    want = torch.stack([n.float() for n in torch._foreach_norm(torch._foreach_sub(ref, base))]).sum()
    got = AnchorDistance.apply(base, *ours)
    assert torch.equal(got, want)
    loss(ref, want).backward()
    loss(ours, got).backward()
    for a, b in zip(ours, ref):
        assert a.grad.dtype == b.grad.dtype and torch.equal(a.grad, b.grad)
    assert torch.isfinite(ours[3].grad).all()


def test_rga_lambda_is_one_at_the_poisoned_model_and_decays():
    m = build("rga")
    _, s0 = m.loss(StepInputs(REF.clone(), FY, RL, RY, REF))
    assert s0["lambda"] == pytest.approx(1.0)
    lams = []
    for shift in [0.0, 1.0, 2.0, 4.0]:
        cur = REF + torch.tensor([shift, -shift])  # moving away from the poisoned predictions
        lams.append(m.loss(StepInputs(cur, FY, RL, RY, REF))[1]["lambda"])
    assert lams[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(lams, lams[1:]))
    assert rga_lambda(0.0, 2.0) == 1.0 and rga_lambda(1.0, 2.0) == pytest.approx(math.exp(-2))


def test_rga_per_row_lambda_weights_each_forget_row_by_its_own_kl():
    """lambda_scope = "row": forget term mean(λ_i·CE_i) with λ_i = exp(−KL_i)^α, detached; a row
    still at the poisoned prediction keeps λ = 1 while a flipped row of the same batch gets ~0
    (the batch scope gives both the batch-mean KL's λ); one row alone: the two scopes agree."""
    cur = REF.clone()
    cur[0] = torch.tensor([4.0, -3.0])  # row 0 has flipped; rows 1, 2 still at the poisoned model
    cur.requires_grad_(True)
    m = build("rga", {"lambda_scope": "row", "beta": 0.0})
    loss, stats = m.loss(StepInputs(cur, FY, RL, RY, REF))
    kls = [_kl(REF[i:i + 1], cur[i:i + 1].detach()) for i in range(3)]
    lams = [math.exp(-k) ** 2 for k in kls]
    ces = ce(cur.detach(), FY)
    want = sum(ce(RL, RY)) / 2 - sum(lam * c for lam, c in zip(lams, ces)) / 3
    assert loss.item() == pytest.approx(want, rel=1e-5)
    assert lams[1] == pytest.approx(1.0) and lams[0] < 1e-5
    assert stats["lambda"] == pytest.approx(sum(lams) / 3, rel=1e-5)
    assert stats["forget_loss"] == pytest.approx(sum(ces) / 3, rel=1e-5)
    loss.backward()  # λ_i is a weight, not a path: row 0's gradient is λ_0-small, rows 1-2 full GA
    assert cur.grad[0].abs().max() < 1e-6 < cur.grad[1].abs().max()
    batch = build("rga", {"beta": 0.0}).loss(StepInputs(REF.clone(), FY, RL, RY, REF))[1]["lambda"]
    assert float(batch) == pytest.approx(1.0)
    # the run's log says it is not the paper's RGA
    assert m.prepare(torch.nn.Linear(2, 2), None) == ("rga: methods.rga.beta = 0: no L2 anchor; λ per forget row "
                                                     "(methods.rga.lambda_scope = \"row\", not the paper's one λ per batch)")
    assert build("rga", {"beta": 0.0}).prepare(torch.nn.Linear(2, 2), None) == "rga: methods.rga.beta = 0: no L2 anchor"
    for i in range(3):
        one = StepInputs(cur.detach()[i:i + 1], FY[i:i + 1], RL, RY, REF[i:i + 1])
        by_row, by_batch = m.loss(one)[0], build("rga", {"beta": 0.0}).loss(one)[0]
        assert by_row.item() == pytest.approx(by_batch.item(), rel=1e-6)


def test_head_names():
    assert is_head("classifier.weight") and is_head("score.weight")
    assert not is_head("bert.encoder.layer.0.attention.self.query.weight")


def _logsigmoid(z):
    return -math.log(1 + math.exp(-z))


def test_pure_ga_is_minus_forget_ce_without_retain_gradient():
    m = build("pure_ga", {"forget_weight": 0.5})
    fl, rl = FL.clone().requires_grad_(True), RL.clone().requires_grad_(True)
    loss, stats = m.loss(StepInputs(fl, FY, rl, RY))
    assert loss.item() == pytest.approx(-0.5 * sum(ce(FL, FY)) / 3, rel=1e-6)
    assert stats["retain_loss"] == pytest.approx(sum(ce(RL, RY)) / 2, rel=1e-6)  # reported only
    g_f, g_r = torch.autograd.grad(loss, [fl, rl], allow_unused=True)
    assert g_f is not None and g_r is None
    assert method_params("pure_ga") == {"forget_weight": 1.0}


def test_finetune_is_retain_ce_only():
    m = build("finetune", {"retain_weight": 2.0})
    fl, rl = FL.clone().requires_grad_(True), RL.clone().requires_grad_(True)
    loss, stats = m.loss(StepInputs(fl, FY, rl, RY))
    assert loss.item() == pytest.approx(2.0 * sum(ce(RL, RY)) / 2, rel=1e-6)
    assert stats["forget_loss"] == pytest.approx(sum(ce(FL, FY)) / 3, rel=1e-6)  # reported only
    g_f, g_r = torch.autograd.grad(loss, [fl, rl], allow_unused=True)
    assert g_f is None and g_r is not None


@pytest.mark.parametrize("beta,gamma", [(4.5, 0.0), (1.0, 0.5), (0.2, -1.0)])
def test_simnpo_formula(beta, gamma):
    m = build("simnpo", {"beta": beta, "gamma": gamma, "retain_weight": 0.5, "forget_weight": 2.0})
    loss, stats = m.loss(StepInputs(FL, FY, RL, RY))  # no reference model
    # −(2/β)·logσ(−(β/|y|)·log p(y|x) − γ), |y| = 1, log p = −CE
    forget = sum(-(2 / beta) * _logsigmoid(-beta * (-c) - gamma) for c in ce(FL, FY)) / 3
    assert stats["forget_loss"] == pytest.approx(forget, rel=1e-5)
    assert loss.item() == pytest.approx(0.5 * sum(ce(RL, RY)) / 2 + 2.0 * forget, rel=1e-5)
    assert not REGISTRY["simnpo"].needs_reference


def test_simnpo_at_zero_ce_is_2_over_beta_log2():
    sure = torch.tensor([[-20.0, 20.0]])  # p(target) ≈ 1
    _, stats = build("simnpo", {"beta": 2.0}).loss(StepInputs(sure, torch.tensor([1]), RL, RY))
    assert stats["forget_loss"] == pytest.approx(math.log(2), rel=1e-6)


@pytest.mark.parametrize("beta", [1.0, 2.0, 0.0])
def test_wga_formula_and_detached_weight(beta):
    m = build("wga", {"beta": beta})
    fl = FL.clone().requires_grad_(True)
    loss, stats = m.loss(StepInputs(fl, FY, RL, RY))
    cur = ce(FL, FY)
    weights = [math.exp(-c) ** beta for c in cur]  # p(y|x)^β
    forget = sum(w * c for w, c in zip(weights, cur)) / 3
    assert stats["forget_loss"] == pytest.approx(forget, rel=1e-5)
    assert loss.item() == pytest.approx(sum(ce(RL, RY)) / 2 - forget, rel=1e-5)
    # the weight is detached: the gradient is −w_i/3 · ∂CE_i/∂logits = −w_i/3 · (softmax − onehot)
    (g,) = torch.autograd.grad(loss, fl)
    p = torch.softmax(FL, -1)
    want = -(torch.tensor(weights)[:, None] / 3) * (p - torch.nn.functional.one_hot(FY, 2))
    assert torch.allclose(g, want, atol=1e-6)


@pytest.mark.parametrize("name", ["pure_ga", "simnpo", "wga", "finetune"])
def test_every_method_key_is_listed_in_its_errors(name):
    with pytest.raises(ConfigError) as e:
        method_params(name, {"nope": 1})
    assert str(e.value).startswith(f"methods.{name}.nope: unknown key (allowed: ")


@pytest.mark.parametrize(
    "name,raw,msg",
    [
        ("rga", {"alpha": -1}, "methods.rga.alpha = -1.0: must be >= 0"),
        ("rga", {"kl_direction": "up"}, "methods.rga.kl_direction = 'up': allowed values are"),
        ("rga", {"lambda_scope": "batches"}, "methods.rga.lambda_scope = 'batches': allowed values are batch, row"),
        ("npo", {"beta": 0}, "methods.npo.beta = 0.0: must be > 0"),
        ("npo", {"gamma": 1}, "methods.npo.gamma: unknown key (allowed: forget_weight, retain_weight, beta, lr)"),
        ("ga", {"retain_weight": "x"}, "methods.ga.retain_weight = 'x': expected float"),
        ("xx", {}, "methods.xx: unknown method"),
        ("simnpo", {"beta": 0}, "methods.simnpo.beta = 0.0: must be > 0"),
        ("simnpo", {"gamma": "a"}, "methods.simnpo.gamma = 'a': expected float"),
        ("wga", {"beta": -1}, "methods.wga.beta = -1.0: must be >= 0"),
        ("pure_ga", {"forget_weight": -1}, "methods.pure_ga.forget_weight = -1.0: must be >= 0"),
        ("pure_ga", {"retain_weight": 1}, "methods.pure_ga.retain_weight: unknown key (allowed: forget_weight, lr)"),
        ("finetune", {"retain_weight": 0}, "methods.finetune.retain_weight = 0.0: must be > 0"),
        ("finetune", {"forget_weight": 1}, "methods.finetune.forget_weight: unknown key (allowed: retain_weight, lr)"),
        ("ga", {"lr": -1e-4}, "methods.ga.lr = -0.0001: must be in [0, 1] (this method's peak unlearning lr; not set: unlearn.lr)"),
        ("rga", {"lr": 2}, "methods.rga.lr = 2.0: must be in [0, 1]"),
        ("npo", {"lr": float("nan")}, "methods.npo.lr = nan: must be in [0, 1]"),
        ("wga", {"lr": "1e-4"}, "methods.wga.lr = '1e-4': expected float"),
        ("finetune", {"lr": True}, "methods.finetune.lr = True: expected float"),
    ],
)
def test_param_errors_are_one_line(name, raw, msg):
    with pytest.raises(ConfigError) as e:
        method_params(name, raw)
    assert msg in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_method_takes_its_own_lr_only_when_set(name):
    """``[methods.<name>] lr``: the method's own peak unlearning lr; absent, the dict (and so the run's
    config.toml) has no ``lr`` and the method takes ``unlearn.lr`` (``method.lr`` None)."""
    assert "lr" not in method_params(name) and build(name).lr is None
    assert method_params(name, {"lr": 5e-5})["lr"] == 5e-5
    m = build(name, {"lr": 0})
    assert m.lr == 0.0 and isinstance(m.p, REGISTRY[name].Params) and not hasattr(m.p, "lr")
