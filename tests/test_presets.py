"""Every shipped preset loads and validates; the grid is complete."""

from pathlib import Path

import pytest

from rga_engine import config

ROOT = Path(__file__).resolve().parent.parent / "presets"
ALL = sorted(p for p in ROOT.rglob("*.toml") if not p.name.startswith("_"))


def test_grid_is_complete():
    names = {str(p.relative_to(ROOT)) for p in ALL}
    for ds in ("sst2", "hsol", "agnews"):
        for at in ("badnets", "addsent", "hiddenkiller"):
            assert f"demo/{ds}-{at}.toml" in names and f"minilm/{ds}-{at}.toml" in names
            for m in ("bert", "distilbert", "llama2"):
                assert f"paper/{m}-{ds}-{at}.toml" in names


# the demos that unlearn on a linear lr schedule: (peak lr, unlearning batch, methods) -- SST-2
# BadNets in 156 steps of 16 rows from 1.5e-4 (2026-12-02, b5fba2e) and AG News BadNets the same
# (2026-12-03), AG News AddSent and HiddenKiller in 84 of 32 from 3e-4, all four with GA and RGA
# only; HSOL BadNets in 228 of 32 from 1e-3 with all three methods on its tiny BERT (2026-12-07,
# rule 66)
GA_RGA, ALL_THREE = ["ga", "rga"], ["ga", "npo", "rga"]
LINEAR_DEMOS = {"demo/sst2-badnets.toml": (1.5e-4, 16, GA_RGA), "demo/agnews-badnets.toml": (1.5e-4, 16, GA_RGA),
                "demo/agnews-addsent.toml": (3e-4, 32, GA_RGA), "demo/agnews-hiddenkiller.toml": (3e-4, 32, GA_RGA),
                "demo/hsol-hiddenkiller.toml": (3e-4, 32, GA_RGA),
                "demo/hsol-badnets.toml": (1e-3, 32, ALL_THREE), "demo/hsol-addsent.toml": (1e-3, 32, ALL_THREE)}


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(ROOT)))
def test_preset_loads(path):
    cfg = config.load(path)
    assert cfg.data.dataset in ("sst2", "hsol", "agnews") and cfg.attack.name in ("badnets", "addsent", "hiddenkiller")
    # the paper's three; the first demo keeps to its story (GA shifts, RGA does not) to stay
    # within minutes on 2 cores, and says how to add NPO; so do the three AG News demos and HSOL
    # HiddenKiller (on MiniLM with AG News HiddenKiller's settings since 2026-12-08). They and
    # the HSOL BadNets and AddSent demos alone unlearn on a linear lr schedule (the others' seed
    # checks were measured at a constant lr)
    if (schedule := LINEAR_DEMOS.get(path.relative_to(ROOT).as_posix())):
        lr, batch_size, methods = schedule
        assert cfg.unlearn.methods == methods
        assert "npo" in methods or "npo" in path.read_text(encoding="utf-8")  # says how to add NPO
        assert (cfg.unlearn.lr_schedule, cfg.unlearn.lr, cfg.unlearn.epochs, cfg.unlearn.batch_size) == (
            "linear", lr, 12, batch_size)
    else:
        assert cfg.unlearn.methods == ["ga", "npo", "rga"]
        assert cfg.unlearn.lr_schedule == "constant"
    # poisoning and Retrain: the SST-2 BadNets demo alone on a falling lr (2026-12-04, rule 13)
    falling = path.relative_to(ROOT).as_posix() == "demo/sst2-badnets.toml"
    assert cfg.train.lr_schedule == ("linear" if falling else "constant")
    assert not falling or cfg.train.lr == 1e-4
    # the AG News and SST-2 BadNets demos on a 1,600-row sample (2026-12-05, rules 28 and 30), the
    # other MiniLM demos on 2,000
    name = path.relative_to(ROOT).as_posix()
    if name in ("demo/agnews-badnets.toml", "demo/sst2-badnets.toml"):
        assert cfg.data.train_limit == 1600
    elif name.startswith("demo/") and cfg.model.name == "minilm":
        assert cfg.data.train_limit == 2000
    # the word embeddings stay the poisoned model's while unlearning in the SST-2 BadNets demo
    # (2026-12-06, rule 52) and the HSOL BadNets demo, whose RGA also takes α = 1 (2026-12-07, rule
    # 71), and in HSOL AddSent, which extends it (2026-12-07, rule 78); every other preset keeps
    # the paper's α = 2
    hsol_recipe = name in ("demo/hsol-badnets.toml", "demo/hsol-addsent.toml")
    assert cfg.unlearn.freeze_embeddings == (hsol_recipe or name == "demo/sst2-badnets.toml")
    assert cfg.methods.get("rga", {}).get("alpha", 2.0) == (1.0 if hsol_recipe else 2.0)  # 2.0: RGA's default
    assert cfg.model.pretrain_epochs == (10 if hsol_recipe else 0)
    # issue 15: every demo starts from a pre-trained encoder (MiniLM, or the tiny one masked-LM
    # pre-trained in the run); the from-scratch tiny model is for tests only
    if name.startswith("demo/"):
        assert cfg.model.name == "minilm" or cfg.model.pretrain_epochs > 0, name
    assert cfg.description


def test_paper_presets_follow_the_protocol():
    c = config.load(ROOT / "paper" / "bert-sst2-badnets.toml")
    assert (c.model.name, c.train.epochs, c.train.lr, c.train.batch_size, c.model.max_length) == ("bert-base-uncased", 5, 2e-5, 32, 128)
    assert (c.unlearn.epochs, c.unlearn.eval_every) == (30, 10)
    assert c.methods["rga"] == {"alpha": 2.0, "beta": 0.05, "kl_direction": "poisoned_current"}
    ll = config.load(ROOT / "paper" / "llama2-agnews-hiddenkiller.toml")
    assert ll.model.name == "meta-llama/Llama-2-7b-hf" and ll.train.lr == 5e-6 and ll.model.dtype == "bf16"


PAPER = sorted((ROOT / "paper").glob("[!_]*.toml"))


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_paper_preset_is_the_authors_setup(path):
    """Each paper preset resolves offline (config.load touches no hub) to the authors' head, dtype,
    optimizer reset, batch order and forget set."""
    c = config.load(path)
    family = path.stem.split("-")[0]
    head, dtype = {"bert": ("cls", "fp32"), "distilbert": ("cls", "fp32"), "llama2": ("auto", "bf16")}[family]
    assert (c.model.pooling, c.model.dtype) == (head, dtype)
    assert (c.train.reset_optimizer, c.unlearn.reset_optimizer) == ("epoch", "epoch")
    assert (c.train.shuffle, c.train.group_by_length) == (False, False)
    assert c.unlearn.forget_set == "cube"  # the authors' default: CUBE detection
    assert (c.unlearn.cube_components, c.unlearn.cube_n_neighbors, c.unlearn.cube_metric,
            c.unlearn.cube_min_cluster_size, c.unlearn.cube_min_samples) == (4, 100, "cosine", 150, 120)
    from rga_engine.cube import min_dist_for
    assert min_dist_for(c.model.name, c.unlearn.cube_min_dist) == (0.15 if family == "distilbert" else 0.25)
    assert (c.train.epochs, c.train.batch_size, c.model.max_length, c.unlearn.epochs) == (5, 32, 128, 30)
    if c.attack.name == "addsent":
        assert c.attack.sentence == {"sst2": "I watch this 3D movie"}.get(c.data.dataset, "no cross, no crown")


def test_recommended_is_the_files_own_key_and_not_inherited(tmp_path):
    from rga_tui.presets import load_info

    (tmp_path / "base.toml").write_text('recommended = true\n[data]\ndataset = "sst2"\n')
    (tmp_path / "child.toml").write_text('extends = "base.toml"\n')
    assert load_info(tmp_path / "base.toml", "base").recommended
    child = load_info(tmp_path / "child.toml", "child")
    assert child.ok and not child.recommended
    (tmp_path / "bad.toml").write_text('recommended = "yes"\n')
    with pytest.raises(config.ConfigError, match="recommended: expected true or false"):
        config.load(tmp_path / "bad.toml")


def test_display_toml_shows_only_the_keys_that_apply():
    demo = config.load(ROOT / "demo" / "sst2-badnets.toml")
    shown = demo.to_display_toml()
    assert "keep_layers" in shown and "triggers" in shown
    for key in ("hidden_size", "num_layers", "pretrain_lr", "sentence", "lora_r", "paraphrase_column"):
        assert key not in shown, key
    assert "hidden_size" in demo.to_toml()  # config.toml keeps every key
    assert "cube_min_cluster_size" not in shown  # CUBE's keys only with unlearn.forget_set = "cube"
    cube = config.load(ROOT / "demo" / "sst2-badnets.toml", ['unlearn.forget_set="cube"']).to_display_toml()
    assert "cube_min_cluster_size" in cube
    tiny = config.load(ROOT / "demo" / "hsol-addsent.toml").to_display_toml()
    assert "hidden_size" in tiny and "sentence" in tiny and "keep_layers" not in tiny and "triggers" not in tiny


def _make_presets():
    import importlib.util

    path = ROOT.parent / "scripts" / "make_presets.py"
    spec = importlib.util.spec_from_file_location("make_presets", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_make_presets_regenerates_the_committed_presets_exactly(tmp_path, capsys):
    """scripts/make_presets.py writes every generated preset byte for byte as committed, and its
    --check names what drifted (a changed file, a missing one, a preset it does not make)."""
    mp = _make_presets()
    assert mp.main(["--check"]) == 0, capsys.readouterr().err
    assert mp.main(["--out", str(tmp_path)]) == 0
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.toml"))
    assert written == sorted(str(p.relative_to(ROOT)) for p in ALL)  # the whole grid, no base
    for rel in written:
        assert (tmp_path / rel).read_bytes() == (ROOT / rel).read_bytes(), rel
    (tmp_path / "demo" / "sst2-badnets.toml").write_text("changed\n")
    (tmp_path / "paper" / "bert-hsol-addsent.toml").unlink()
    (tmp_path / "minilm" / "extra.toml").write_text("")
    capsys.readouterr()
    assert mp.main(["--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "demo/sst2-badnets.toml: differs" in err and "paper/bert-hsol-addsent.toml: missing" in err
    assert "minilm/extra.toml: not made by make_presets.py" in err
