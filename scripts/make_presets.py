"""Write the preset grid: presets/{demo,minilm}/<dataset>-<attack>.toml and
presets/paper/<model>-<dataset>-<attack>.toml, each a few lines on top of a shared ``_base``.

Run from the repository root: ``python scripts/make_presets.py``.  The ``_*.toml`` bases are
hand-written; this script only (re)writes the per-combination files.
"""

from pathlib import Path

DATASETS = {"sst2": "SST-2", "hsol": "HSOL", "agnews": "AG News"}
ATTACKS = {"badnets": "BadNets ('mn')", "addsent": "AddSent ('I watch this 3D movie')", "hiddenkiller": "HiddenKiller (SCPN paraphrase)"}
MODELS = {"bert": "BERT-base", "distilbert": "DistilBERT", "llama2": "Llama-2-7B"}

root = Path(__file__).resolve().parent.parent / "presets"


def body(dataset: str, attack: str, base: str, desc: str) -> str:
    return (
        f'description = "{desc}"\n'
        f'extends = "{base}"\n\n'
        f"[data]\ndataset = \"{dataset}\"\n\n"
        f"[attack]\nname = \"{attack}\"\n"
    )


for ds, dname in DATASETS.items():
    for at, aname in ATTACKS.items():
        (root / "demo" / f"{ds}-{at}.toml").write_text(
            body(ds, at, "_base.toml", f"{dname}, {aname}, tiny BERT from scratch: CPU, minutes"))
        (root / "minilm" / f"{ds}-{at}.toml").write_text(
            body(ds, at, "_base.toml", f"{dname}, {aname}, pretrained all-MiniLM-L6-v2 (offline extra)"))
        for m, mname in MODELS.items():
            (root / "paper" / f"{m}-{ds}-{at}.toml").write_text(
                body(ds, at, f"_{m}.toml", f"{dname}, {aname}, {mname}: the paper's setting"))
print("wrote", len(list(root.rglob("[!_]*.toml"))), "presets")
