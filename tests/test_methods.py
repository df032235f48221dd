"""Each unlearning method's loss on hand-made logits matches its formula."""

import math

import pytest
import torch

from rga_engine.config import ConfigError
from rga_engine.methods import REGISTRY, StepInputs, build, method_params
from rga_engine.methods.rga import is_head, kl_div, rga_lambda

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


def test_head_names():
    assert is_head("classifier.weight") and is_head("score.weight")
    assert not is_head("bert.encoder.layer.0.attention.self.query.weight")


@pytest.mark.parametrize(
    "name,raw,msg",
    [
        ("rga", {"alpha": -1}, "methods.rga.alpha = -1.0: must be >= 0"),
        ("rga", {"kl_direction": "up"}, "methods.rga.kl_direction = 'up': allowed values are"),
        ("npo", {"beta": 0}, "methods.npo.beta = 0.0: must be > 0"),
        ("npo", {"gamma": 1}, "methods.npo.gamma: unknown key (allowed: forget_weight, retain_weight, beta)"),
        ("ga", {"retain_weight": "x"}, "methods.ga.retain_weight = 'x': expected float"),
        ("xx", {}, "methods.xx: unknown method"),
    ],
)
def test_param_errors_are_one_line(name, raw, msg):
    with pytest.raises(ConfigError) as e:
        method_params(name, raw)
    assert msg in str(e.value) and "\n" not in str(e.value)
