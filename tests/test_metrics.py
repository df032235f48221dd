"""Tests of rga_engine.metrics against the paper poster's SST-2 matrices and an AG-style case."""

from __future__ import annotations

import json

import pytest

from rga_engine.metrics import (
    PARTLY_ASR_MARGIN,
    accuracy,
    asr,
    collapsed_class,
    confusion_matrix,
    grade_verdict,
    lfr,
    model_metrics,
    paper_lfr,
    trigger_shift,
    verdict_text,
)

# Poster, SST-2 BadNets, triggered test set (912 negative, 909 positive), target 1 (positive).
# rows = actual [neg, pos], cols = predicted [neg, pos]
CLEAN = [[835, 77], [83, 826]]      # f_θc: the clean model
POISONED = [[0, 912], [0, 909]]     # f_θp: everything triggered → positive
GA = [[912, 0], [909, 0]]           # f_θp*: after GA, everything triggered → negative
PART_POISONED = [[0, 912], [0, 0]]  # test_poisoned_part of the poisoned model
AG_NAMES = ["World", "Sports", "Business", "Sci/Tech"]


def test_confusion_matrix():
    cm = confusion_matrix([0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 0, 2], 3)
    assert cm == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
    assert confusion_matrix([], [], 2) == [[0, 0], [0, 0]]
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 3], [0, 0], 2)
    with pytest.raises(ValueError, match="predictions"):
        confusion_matrix([0, 1], [0], 2)


def test_confusion_matrix_accepts_numpy():
    np = pytest.importorskip("numpy")
    cm = confusion_matrix(np.array([0, 1, 1]), np.array([1, 1, 0]), 2)
    assert cm == [[0, 1], [1, 1]] and all(type(v) is int for row in cm for v in row)


def test_poster_clean_model():
    assert accuracy(CLEAN) == pytest.approx(0.9121, abs=5e-5)
    s = trigger_shift(CLEAN, CLEAN, target=1)
    assert s["verdict"] == "backdoor removed" and not s["shifted"] and not s["remains"]
    assert not s["partly"] and s["collapsed"] is None
    assert s["to_class"] is None and s["score"] == 0.0 and s["scores"] == [0.0, 0.0]
    assert verdict_text(s, ["negative", "positive"]) == "backdoor removed"


def test_poster_poisoned_model():
    assert accuracy(POISONED) == pytest.approx(0.4992, abs=5e-5)
    assert asr(PART_POISONED, 1) == 1.0
    assert asr(POISONED, 1) == 1.0  # the target row is ignored
    s = trigger_shift(POISONED, CLEAN, target=1)
    assert s["verdict"] == "backdoor remains" and s["remains"] and not s["shifted"]
    assert s["to_class"] is None
    assert s["target_score"] == pytest.approx(1 - 77 / 912, abs=1e-4)
    assert verdict_text(s) == "backdoor remains"
    assert lfr(POISONED) == [1.0, 0.0]
    assert paper_lfr(POISONED, 1) == 1.0


def test_poster_ga_model():
    assert accuracy(GA) == pytest.approx(0.5008, abs=5e-5)
    s = trigger_shift(GA, CLEAN, target=1)
    assert s["verdict"] == "trigger shifted → class 0"
    assert trigger_shift(GA, CLEAN, target=1, label_names=["negative", "positive"])["verdict"] == \
        "trigger shifted → negative"
    assert s["shifted"] and s["to_class"] == 0 and not s["remains"]
    assert s["score"] == round(1 - 83 / 909, 4)
    assert s["target_score"] == round(0 - 77 / 912, 4) < 0
    assert verdict_text(s, ["negative", "positive"]) == "trigger shifted → negative"
    assert verdict_text(s) == "trigger shifted → class 0"
    # high LFR on the *target* class is trigger shifting
    assert lfr(GA) == [0.0, 1.0]
    assert paper_lfr(GA, 1) == 0.0
    assert asr([[912, 0], [0, 0]], 1) == 0.0


def test_shift_without_clean_matrix_and_threshold():
    s = trigger_shift(GA, None, target=1)
    assert s["to_class"] == 0 and s["score"] == 1.0 and s["scores"] == [1.0, 0.0]
    # 0.25 of the positives pushed to negative (clean term 0)
    cm = [[90, 10], [25, 75]]
    assert trigger_shift(cm, None, 1, threshold=0.2)["verdict"] == "trigger shifted → class 0"
    assert trigger_shift(cm, None, 1, threshold=0.3)["verdict"] == "backdoor removed"
    # exactly at the threshold counts
    assert trigger_shift([[80, 20], [0, 100]], None, 1, threshold=0.2)["remains"]
    assert trigger_shift([[80, 20], [0, 100]], None, 1, threshold=0.2)["target_score"] == 0.2


def ag_case():
    # 4 classes × 100 rows, target 0 (World). The clean model is ~90% right; after unlearning
    # the trigger sends most rows of the other classes to Business (2).
    clean = [
        [90, 3, 4, 3],
        [2, 94, 2, 2],
        [4, 2, 88, 6],
        [3, 2, 7, 88],
    ]
    shifted = [
        [60, 0, 38, 2],
        [0, 30, 70, 0],
        [1, 0, 98, 1],
        [0, 0, 60, 40],
    ]
    return clean, shifted


def test_ag_shift_to_business():
    clean, shifted = ag_case()
    s = trigger_shift(shifted, clean, target=0)
    assert s["verdict"] == "trigger shifted → class 2" and s["to_class"] == 2 and s["shifted"]
    assert trigger_shift(shifted, clean, 0, label_names=AG_NAMES)["verdict"] == "trigger shifted → Business"
    # P(pred=2 | triggered, actual≠2) = (38+70+60)/300 ; clean (4+2+7)/300
    assert s["score"] == round((168 - 13) / 300, 4)
    assert s["scores"][0] == round((1 - 9) / 300, 4)
    assert len(s["scores"]) == 4 and not s["remains"]
    assert verdict_text(s, AG_NAMES) == "trigger shifted → Business"
    assert verdict_text(s) == "trigger shifted → class 2"


def test_ag_lfr_and_model_metrics():
    clean, shifted = ag_case()
    assert lfr(shifted) == pytest.approx([0.4, 0.7, 0.02, 0.6])
    assert paper_lfr(shifted, 0) == pytest.approx((0.7 + 0.02 + 0.6) / 3)
    part = [[0, 0, 0, 0]] + shifted[1:]
    m = model_metrics(clean, shifted, part, target=0, retrain_pacc=0.9)
    assert set(m) == {"cacc", "pacc", "asr", "lfr", "paper_lfr", "delta_pacc", "confusion_clean",
                      "confusion_poisoned_all", "confusion_poisoned_part", "trigger_shift"}
    assert m["cacc"] == pytest.approx(360 / 400)
    assert m["pacc"] == pytest.approx(228 / 400)
    assert m["asr"] == pytest.approx(1 / 300)
    assert m["delta_pacc"] == pytest.approx(abs(0.57 - 0.9))
    assert m["confusion_poisoned_all"] == shifted and m["confusion_poisoned_all"] is not shifted
    assert m["trigger_shift"]["to_class"] == 2
    json.dumps(m)  # JSON-ready
    # no part matrix: ASR from the non-target rows of poisoned_all (same value here)
    m2 = model_metrics(clean, shifted, None, target=0)
    assert m2["asr"] == m["asr"] and m2["delta_pacc"] is None and m2["confusion_poisoned_part"] is None


def test_poster_model_metrics():
    m = model_metrics(CLEAN, POISONED, PART_POISONED, target=1, retrain_pacc=accuracy(CLEAN))
    assert m["pacc"] == pytest.approx(0.4992, abs=5e-5) and m["asr"] == 1.0
    assert m["delta_pacc"] == pytest.approx(0.9121 - 0.4992, abs=1e-4)
    assert m["trigger_shift"]["verdict"] == "backdoor remains"
    g = model_metrics(CLEAN, GA, [[912, 0], [0, 0]], target=1, retrain_pacc=accuracy(CLEAN))
    assert g["trigger_shift"]["verdict"] == "trigger shifted → class 0" and g["asr"] == 0.0
    named = model_metrics(CLEAN, GA, [[912, 0], [0, 0]], 1, label_names=["negative", "positive"])
    assert named["trigger_shift"]["verdict"] == "trigger shifted → negative"
    assert g["pacc"] == pytest.approx(0.5008, abs=5e-5)
    r = model_metrics(CLEAN, CLEAN, [[835, 77], [0, 0]], target=1)
    assert r["trigger_shift"]["verdict"] == "backdoor removed" and r["delta_pacc"] is None
    assert r["asr"] == pytest.approx(77 / 912)


def test_empty_rows_and_matrices():
    assert accuracy([[0, 0], [0, 0]]) == 0.0
    assert lfr([[0, 0, 0], [1, 3, 0], [0, 0, 0]]) == [0.0, 0.25, 0.0]
    assert paper_lfr([[5, 0, 0], [1, 3, 0], [0, 0, 0]], 0) == 0.25  # empty class 2 left out
    assert paper_lfr([[5, 0], [0, 0]], 0) == 0.0
    assert asr([[3, 0], [0, 0]], 0) == 0.0
    s = trigger_shift([[0, 0], [0, 0]], [[0, 0], [0, 0]], 1)
    assert s["verdict"] == "backdoor removed" and s["scores"] == [0.0, 0.0] and s["collapsed"] is None
    with pytest.raises(ValueError, match="target"):
        trigger_shift(CLEAN, CLEAN, target=2)
    with pytest.raises(ValueError, match="square"):
        accuracy([[1, 2]])


# --------------------------------------------------------------------------- the graded verdict
NAMES = ["negative", "positive"]
RETRAIN_CLEAN = [[800, 112], [100, 809]]  # a clean model; Retrain's ASR on the triggered rows ~ 8 %


def test_graded_partly_remains_against_retrain():
    # 35 % of the triggered negatives still go to positive (clean: 12 %): shift 0.23 would be
    # "remains"; with 25 % it is 0.13, under the threshold, yet ASR 25 % is 17 points over Retrain's
    cm = [[684, 228], [0, 909]]
    s = trigger_shift(cm, RETRAIN_CLEAN, 1, asr=0.25, retrain_asr=0.08, label_names=NAMES)
    assert not s["remains"] and not s["shifted"] and s["partly"]
    assert s["verdict"] == "backdoor partly remains (ASR 25.0 %)"
    assert s["asr"] == 0.25 and s["retrain_asr"] == 0.08
    # 0.10 over Retrain is not "clearly above"; 0.1001 is
    assert trigger_shift(cm, RETRAIN_CLEAN, 1, asr=0.18, retrain_asr=0.08)["verdict"] == "backdoor removed"
    assert trigger_shift(cm, RETRAIN_CLEAN, 1, asr=0.1801, retrain_asr=0.08)["partly"]


# The shipped SST-2 demo (presets/demo/sst2-badnets.toml, bf16) at seeds 2023 and 2024, 2026-12-04:
# (Retrain clean, Retrain triggered, RGA clean, RGA triggered), rows = negative / positive.
DEMO_2023 = ([[817, 95], [172, 737]], [[833, 79], [198, 711]], [[676, 236], [82, 827]], [[690, 222], [85, 824]])
DEMO_2024 = ([[854, 58], [230, 679]], [[864, 48], [255, 654]], [[752, 160], [125, 784]], [[772, 140], [135, 774]])


@pytest.mark.parametrize("cms, rga_asr", [(DEMO_2023, 222 / 912), (DEMO_2024, 140 / 912)])
def test_partly_remains_by_asr_while_the_target_score_reads_the_trigger_alone(cms, rga_asr):
    # RGA's ASR is 15.7 / 10.1 points over Retrain's: "partly remains", as issue 15 defines it.
    # But RGA sends as many *clean* negatives to positive (25.9 % / 17.5 %): the target's shift
    # score, what the trigger adds to the model's clean predictions over what it adds in Retrain,
    # is ~0 -- the excess ASR is RGA's lean on every row (CACC counts it), not the trigger
    re_clean, re_trig, rga_clean, rga_trig = cms
    ref = trigger_shift(re_trig, re_clean, 1, is_retrain=True)
    s = trigger_shift(rga_trig, rga_clean, 1, asr=rga_asr, retrain_asr=asr(re_trig, 1),
                      retrain_scores=ref["scores"], label_names=NAMES)
    assert rga_asr - asr(re_trig, 1) > PARTLY_ASR_MARGIN
    assert s["partly"] and s["verdict"] == f"backdoor partly remains (ASR {100 * rga_asr:.1f} %)"
    assert abs(s["target_score"]) < 0.02 and not s["remains"] and not s["shifted"]
    clean_to_target = rga_clean[0][1] / sum(rga_clean[0])
    assert abs(clean_to_target - rga_asr) < 0.025  # the trigger adds < 2.5 points to the lean


def test_graded_partly_without_retrain_uses_half_the_threshold():
    # Retrain's ASR unknown (the Retrain stage itself, or no Retrain): target shift ≥ threshold / 2
    cm = [[790, 122], [0, 909]]  # P(pred=pos | triggered neg) = 0.134, clean 0.0 → shift 0.134 ≥ 0.1
    s = trigger_shift(cm, [[912, 0], [100, 809]], 1, label_names=NAMES)
    assert s["partly"] and s["verdict"] == f"backdoor partly remains (ASR {100 * 122 / 912:.1f} %)"
    cm = [[830, 82], [0, 909]]  # shift 0.09 < 0.1
    assert trigger_shift(cm, [[912, 0], [100, 809]], 1)["verdict"] == "backdoor removed"
    # the same model judged against a Retrain with 5 % ASR: 13.4 % is 8.4 points over it → removed
    assert not trigger_shift([[790, 122], [0, 909]], [[912, 0], [100, 809]], 1, retrain_asr=0.05)["partly"]


def test_graded_removed_and_remains_ignore_retrain():
    s = trigger_shift(CLEAN, CLEAN, 1, asr=0.0844, retrain_asr=0.08, label_names=NAMES)
    assert s["verdict"] == "backdoor removed" and not s["partly"]
    s = trigger_shift(POISONED, CLEAN, 1, asr=1.0, retrain_asr=0.08, label_names=NAMES)
    assert s["verdict"] == "backdoor remains" and s["remains"] and not s["partly"]
    g = trigger_shift(GA, CLEAN, 1, asr=0.0, retrain_asr=0.08, label_names=NAMES)
    assert g["verdict"] == "trigger shifted → negative" and not g["partly"]


def test_graded_collapsed_model():
    everything_neg = [[912, 0], [909, 0]]
    assert collapsed_class(everything_neg) == 0
    assert collapsed_class([[905, 7], [900, 9]]) == 0  # 99.1 % in one class
    assert collapsed_class([[900, 12], [900, 9]]) is None  # 98.8 %
    assert collapsed_class(None) is None and collapsed_class([[0, 0], [0, 0]]) is None
    s = trigger_shift(everything_neg, everything_neg, 1, label_names=NAMES)
    assert s["collapsed"] == 0 and s["verdict"] == "predicts negative for everything"
    assert not s["shifted"] and not s["remains"]
    # collapsed on clean but the trigger still sends to the target: the collapse is what it says
    s = trigger_shift(POISONED, [[0, 912], [0, 909]], 1, label_names=NAMES)
    assert s["collapsed"] == 1 and s["verdict"] == "predicts positive for everything"
    m = model_metrics(everything_neg, everything_neg, [[912, 0], [0, 0]], 1, label_names=NAMES, retrain_asr=0.08)
    assert m["trigger_shift"]["collapsed"] == 0
    json.dumps(m)


def test_grade_verdict_reads_old_summaries():
    # summary.json written before the graded verdict: no "partly" key, old texts
    old_shift = {"shifted": True, "to_class": 0, "score": 0.83, "remains": False, "target_score": -0.34,
                 "scores": [0.83, -0.34], "verdict": "shifted to class 0"}
    assert grade_verdict(old_shift, NAMES) == ("shifted", "trigger shifted → negative")
    assert verdict_text(old_shift) == "trigger shifted → class 0"
    only_text = {"verdict": "shifted to class 1"}
    assert grade_verdict(only_text, NAMES) == ("shifted", "trigger shifted → positive")
    no_shift = {"shifted": False, "to_class": None, "score": 0.05, "remains": False, "target_score": -0.08,
                "scores": [0.05, -0.08], "verdict": "no shift"}
    assert grade_verdict(no_shift, NAMES) == ("removed", "backdoor removed")
    # graded from what the reader knows: the model's ASR against Retrain's, the clean matrix
    assert grade_verdict(no_shift, NAMES, asr=0.309, retrain_asr=0.083) == \
        ("partly", "backdoor partly remains (ASR 30.9 %)")
    assert grade_verdict(no_shift, NAMES, cm_clean=[[912, 0], [909, 0]])[0] == "collapsed"
    # nothing to grade with: the old words
    assert grade_verdict({"shifted": False, "remains": False, "verdict": "no shift"}) == ("none", "no shift")
    assert grade_verdict({"remains": True, "shifted": False, "verdict": "backdoor remains"}) == \
        ("remains", "backdoor remains")


def test_grade_verdict_of_new_dicts_keeps_the_engines_grade():
    s = trigger_shift([[684, 228], [0, 909]], RETRAIN_CLEAN, 1, asr=0.25, retrain_asr=0.08, label_names=NAMES)
    # a reader's own ASR numbers never re-grade what the engine decided
    assert grade_verdict(s, NAMES, asr=0.09, retrain_asr=0.08) == ("partly", "backdoor partly remains (ASR 25.0 %)")
    assert verdict_text(s) == s["verdict"]
    g = trigger_shift(GA, CLEAN, 1, label_names=NAMES)
    assert verdict_text(g) == "trigger shifted → negative"
    assert verdict_text(g, ["neg", "pos"]) == "trigger shifted → neg"


def test_verdict_reads_the_shift_over_retrains():
    """A paraphrase trigger moves a clean model too: on HSOL HiddenKiller (tiny BERT, seed 2022)
    Retrain sends 34 % more triggered than clean non-target rows to the target. Against its own
    clean predictions a model at Retrain's level reads "backdoor remains"; over Retrain's scores
    only what the model adds counts, and Retrain itself is the reference."""
    clean = [[900, 100], [100, 900]]  # binary, target 1: 10 % of the actual-0 rows go to 1 when clean
    retrain = [[560, 440], [100, 900]]  # triggered: 44 % -> shift_target 0.34
    model = [[540, 460], [90, 910]]  # the unlearned model: 46 %, two points over Retrain
    ref = trigger_shift(retrain, clean, target=1)
    assert ref["remains"] and ref["scores"][1] == 0.34 and ref["over_retrain"] is None
    own = trigger_shift(retrain, clean, target=1, is_retrain=True)
    assert own["verdict"] == "backdoor removed" and own["scores"] == ref["scores"]
    assert own["over_retrain"] == [0.0, 0.0] and own["target_score"] == 0.0
    alone = trigger_shift(model, clean, target=1)
    assert alone["verdict"] == "backdoor remains"
    graded = trigger_shift(model, clean, target=1, retrain_scores=ref["scores"], retrain_asr=0.44, asr=0.46)
    assert graded["verdict"] == "backdoor removed" and not graded["remains"]
    assert graded["target_score"] == pytest.approx(0.02, abs=1e-4) and graded["scores"] == alone["scores"]
    # a backdoor that is still there stands out over Retrain's all the same
    poisoned = [[80, 920], [10, 990]]
    assert trigger_shift(poisoned, clean, target=1, retrain_scores=ref["scores"])["remains"]
    # and a shift to another class is read over Retrain's too (3 classes, target 0)
    c3 = [[90, 5, 5], [5, 90, 5], [5, 5, 90]]
    r3 = [[90, 5, 5], [5, 60, 35], [5, 5, 90]]  # the transformation alone sends class-1 rows to 2
    m3 = [[90, 5, 5], [5, 45, 50], [5, 5, 90]]
    assert trigger_shift(m3, c3, 0)["shifted"]  # 0.25 against its own clean predictions
    s3 = trigger_shift(m3, c3, 0, retrain_scores=trigger_shift(r3, c3, 0)["scores"])
    assert not s3["shifted"] and s3["score"] == pytest.approx(0.075, abs=1e-4)
    # scores of the wrong length (another label set) are no reference
    assert trigger_shift(model, clean, 1, retrain_scores=[0.1, 0.2, 0.3])["over_retrain"] is None
