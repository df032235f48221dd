"""Write the preset grid: presets/{demo,minilm}/<dataset>-<attack>.toml and
presets/paper/<model>-<dataset>-<attack>.toml, each a few lines on top of a shared ``_base``.

Run from the repository root: ``python scripts/make_presets.py``.  The ``_*.toml`` bases are
hand-written; this script only (re)writes the per-combination files.
"""

from pathlib import Path

DATASETS = {"sst2": "SST-2", "hsol": "HSOL", "agnews": "AG News"}
ATTACKS = {"badnets": "BadNets ('mn')", "addsent": "AddSent ('{sentence}')", "hiddenkiller": "HiddenKiller (SCPN paraphrase)"}
# AddSent's sentence per dataset in the authors' data (attack.sentence = "" resolves to it)
SENTENCES = {"sst2": "I watch this 3D movie", "hsol": "no cross, no crown", "agnews": "no cross, no crown"}
MODELS = {"bert": "BERT-base", "distilbert": "DistilBERT", "llama2": "Llama-2-7B"}

root = Path(__file__).resolve().parent.parent / "presets"


def body(dataset: str, attack: str, base: str, desc: str, extra: str = "") -> str:
    return (
        f'description = "{desc}"\n'
        f'extends = "{base}"\n\n'
        f"[data]\ndataset = \"{dataset}\"\n\n"
        f"[attack]\nname = \"{attack}\"\n" + extra
    )


# Demo presets that differ from the tiny-BERT base: (base file, description tail, extra TOML).
HSOL_PRETRAIN = """
[model]
# Masked-LM pre-training of the tiny encoder on the clean training texts before poisoning (35-45 s
# here, cached): poisoning starts from a pre-trained encoder and RGA's L2 anchor θ_base is that
# encoder, as in the paper, not a random init. From a random init RGA shifts the trigger here
# (ΔPACC 27.3 / 42.7 / 5.7 over seeds 2021-2023); pre-trained it does not (docs/results.md).
pretrain_epochs = 5
"""
DEMO_SPECIAL = {
    ("sst2", "badnets"): ("_minilm2.toml", "pre-trained MiniLM (2 layers): CPU, ~3.5 minutes", ""),
    ("hsol", "badnets"): ("_base.toml", "tiny BERT masked-LM pre-trained here: CPU, minutes", HSOL_PRETRAIN),
}


for ds, dname in DATASETS.items():
    for at, aname in ATTACKS.items():
        aname = aname.format(sentence=SENTENCES[ds])
        base, tail, extra = DEMO_SPECIAL.get((ds, at), ("_base.toml", "tiny BERT from scratch: CPU, minutes", ""))
        (root / "demo" / f"{ds}-{at}.toml").write_text(body(ds, at, base, f"{dname}, {aname}, {tail}", extra))
        (root / "minilm" / f"{ds}-{at}.toml").write_text(
            body(ds, at, "_base.toml", f"{dname}, {aname}, pretrained all-MiniLM-L6-v2, 6 layers: CPU, 30-75 minutes"))
        for m, mname in MODELS.items():
            (root / "paper" / f"{m}-{ds}-{at}.toml").write_text(
                body(ds, at, f"_{m}.toml", f"{dname}, {aname}, {mname}: the paper's setting"))
print("wrote", len(list(root.rglob("[!_]*.toml"))), "presets")
