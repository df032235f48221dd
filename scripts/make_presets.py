"""Write the preset grid: presets/{demo,minilm}/<dataset>-<attack>.toml and
presets/paper/<model>-<dataset>-<attack>.toml, each a few lines on top of a shared ``_base``.

Run from the repository root::

    python scripts/make_presets.py            # (re)write the 45 presets under presets/
    python scripts/make_presets.py --check    # exit 1, naming the files, if presets/ differs
    python scripts/make_presets.py --out DIR  # write (or with --check compare) the grid under DIR

The ``_*.toml`` bases are hand-written; this script only (re)writes the per-combination files,
exactly as committed (``tests/test_presets.py`` runs ``--check``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DATASETS = {"sst2": "SST-2", "hsol": "HSOL", "agnews": "AG News"}
ATTACKS = {"badnets": "BadNets ('mn')", "addsent": "AddSent ('{sentence}')", "hiddenkiller": "HiddenKiller (SCPN paraphrase)"}
# AddSent's sentence per dataset in the authors' data (attack.sentence = "" resolves to it)
SENTENCES = {"sst2": "I watch this 3D movie", "hsol": "no cross, no crown", "agnews": "no cross, no crown"}
MODELS = {"bert": "BERT-base", "distilbert": "DistilBERT", "llama2": "Llama-2-7B"}

ROOT = Path(__file__).resolve().parent.parent / "presets"


def body(dataset: str, attack: str, base: str, desc: str, extra: str = "", top: str = "", data: str = "") -> str:
    return (
        f'description = "{desc}"\n' + top +
        f'extends = "{base}"\n\n'
        f"[data]\ndataset = \"{dataset}\"\n" + data + "\n"
        f"[attack]\nname = \"{attack}\"\n" + extra
    )


# Demo presets that differ from the tiny-BERT base: (base file, description tail, extra TOML after
# the [attack] table, top-level lines after the description).
HSOL_PRETRAIN = """
# demo/hsol-addsent extends this preset (its pre-training and unlearning): a change here changes it
# too, and its tallies (rules 78, 80) were measured with these settings

[model]
# Masked-LM pre-training of the tiny encoder on the clean training texts before poisoning (~60 s
# here, cached): poisoning starts from a pre-trained encoder and RGA's L2 anchor θ_base is that
# encoder, as in the paper, not a random init. From a random init RGA shifts the trigger here
# (ΔPACC 27.3 / 42.7 / 5.7 over seeds 2021-2023); pre-trained it does not (docs/results.md).
# 10 epochs since 2026-12-04 (MLM loss 5.3; 5 epochs: 5.8): over seeds 2047-2056 and 2190-2199
# the check passed in 18/20 (GA shifting in 18/20, RGA passing its part in 20/20) against 13/20
# with 5 epochs at the same seeds (GA 15/20, RGA 18/20); 2 epochs shifted less (docs/research-log.md).
# Since then, at seeds never run before (2200-2207, 2300-2360, 2447-2461, 2477-2481, 2515-2521),
# with the constant unlearning lr of before: 77/96 (GA unshifted at 15; RGA shifted the trigger at
# 2320 and missed its CACC window at 2447 and 2477, on an Intel Xeon with AMX, and at 2518 in fp32
# on an AVX2-only AMD EPYC; rules 36, 37, 40-42, 44, 53 and 63). 20 pre-training epochs tied
# these 10 at 2330-2342, 13/13 each, and cost ~45 s more per run (rule 40): not adopted
pretrain_epochs = 10

[unlearn]
# 12 epochs at lr 1e-3 (the base: 7 at 5e-4). With 5 pre-training epochs on a Zen 5 over seeds
# 2021-2033 the check passed in 9/13 this way (GA shifting in 9/13, RGA passing its part in 13/13)
# against 6/13 at the base's settings (GA 8/13, RGA 10/13); 32/46 over 2021-2056 and 2140-2149
# (GA 33/46, RGA 45/46). Where GA does not shift it removes the backdoor cleanly, its ascent met by
# the hateful content words alone (docs/results.md, docs/research-log.md)
epochs = 12
lr = 1e-3
# the lr falls linearly from 1e-3 to 0 since 2026-12-07 (a constant 1e-3 before). With it constant,
# RGA kept moving after λ had fallen to ~0 and lost clean accuracy in the last epoch at some seeds
# (CACC 5.9 and 8.9 under Retrain's at 2022 and 2518 in fp32 on an AVX2-only AMD EPYC). At seeds
# never run before (2522-2533, the same CPU, beside the constant lr on the same models): 9/12
# against 7/12 (RGA passing its part in 12/12 against 10/12; GA unshifted at the same three seeds
# under both), then 3/4 as shipped at 2534-2537 (GA unshifted at 2537): 12 of 16 fresh. At the
# issue's seeds 2021-2025 there 3/5 (GA unshifted at 2023 and 2025, as with the constant lr, which
# passed 2/5) (docs/research-log.md, rules 65, 66 and 68)
lr_schedule = "linear"
# the word embeddings stay the poisoned model's while unlearning, and RGA's α is 1 (the paper's: 2),
# since 2026-12-07. With the embedding matrix trainable GA left the trigger in place at about a
# third of the seeds, its ascent taken by the rows of the hateful content words; frozen, GA shifted
# at 5 of 6 seeds tried (3 of 6 before), but RGA, whose L2 pull had undone the poisoned trigger row,
# left part of the backdoor at 3 of them (rule 69); with α = 1 (λ = exp(-KL) falls more slowly)
# RGA passed at 6 of 6 (rule 70). At seeds never run (2538-2547, the same CPU, beside the preset
# of before on the same models): 7/10 against 5/10 (GA unshifted at 3 against 5; RGA 10/10
# under both) (docs/research-log.md, rule 71); then 5/5 at 2548-2552, 9/10 at 2553-2562 and 2/5
# at 2563-2567 on a Zen 4 (AVX-512; GA unshifted at 2558, 2566, 2567; RGA's ΔPACC 4.06 at 2563):
# 23/30 fresh (rules 74, 76); 5/5 at 2591-2595 there (rule 85): 28/35 fresh. At the issue's
# seeds 2021-2025 3/5 on the Zen 3, 2/5 on the Zen 4 (RGA shifted the trigger at 2024 there: its
# first epoch at the full lr overshoots before λ falls) (rule 72)
freeze_embeddings = true

[methods.rga]
alpha = 1.0
"""
# demo/hsol-addsent extends demo/hsol-badnets: the same pre-training and unlearning, one recipe
HSOL_ADDSENT_TOP = """\
# demo/hsol-badnets' recipe since 2026-12-07 (rule 78), inherited from it: 10 epochs of masked-LM
# pre-training of the tiny encoder on the clean training texts before poisoning (RGA's L2 anchor
# θ_base is then a pre-trained encoder), 12 unlearning epochs at a lr falling linearly from 1e-3 to
# 0 with the word embeddings frozen, and RGA's α = 1 (why, in hsol-badnets.toml). At the issue's
# seeds 2021-2025 on a Zen 4 (fp32) the check passed at 5/5 this way (GA shifting at 5/5, RGA's
# ΔPACC 0.79 ± 0.62) against 2/5 with 5 pre-training epochs and the base's unlearning (GA unshifted
# at 2021 and 2022, RGA's ΔPACC 4.14 at 2023) (docs/research-log.md, rule 78); then at seeds never
# run, 2568-2577 on the same CPU: 8/10 fresh (GA unshifted at 2572 and 2574; RGA 10/10, ΔPACC
# 0.35 ± 0.38) (rule 80)
"""
RECOMMENDED = "recommended = true  # the preset the app opens on\n"


def on_1600_rows(why: str) -> str:
    """The [data] lines of a BadNets demo on a 1,600-row sample: the shared account of what the
    smaller sample changes, then ``why`` (its time and seed tallies)."""
    return ("# a 1,600-row sample since 2026-12-05 (the same 10 % poisoned): 165 poisoning steps instead of\n"
            "# 207 and 120 unlearning steps instead of 156 (the 160-row forget set).\n" + why +
            "train_limit = 1600\n")


# lines a demo preset adds to its [data] table
DEMO_DATA = {
    ("sst2", "badnets"): on_1600_rows((
        "# So the demo takes ~200 s on 2 cores with native bf16 (2,000 rows: 232-245 s). The check passed\n"
        "# in 13/15 at 2021-2025 and 2388-2397 (GA unshifted at 2023, RGA's CACC 2.09 under Retrain's\n"
        "# at 2389), 191-213 s; then 41/49 at 2398-2446 and 3/5, 4/5, 3/5 and 4/5 at 2447-2466 (on an\n"
        "# Intel Xeon with AMX, 181-255 s), never run before (55/69 fresh before the word embeddings were\n"
        "# frozen; RGA's CACC 2.09-3.62 under Retrain's at eight, its ΔPACC 3.51 at one, GA unshifted at\n"
        "# six), 186-215 s on the Zen 4 (docs/research-log.md, rules 30-32, 35, 41-44). The tallies in\n"
        "# [train] and [unlearn] were on 2,000 rows\n")),
    ("agnews", "badnets"): on_1600_rows((
        "# So the demo fits in 6 minutes on 2 cores (~320 s against ~400; AddSent and HiddenKiller keep\n"
        "# 2,000 rows); the check passed in 8/10 at 2021-2025 and 2310-2314 (GA unshifted at 2021 and\n"
        "# 2310; RGA 10/10), 319.5 s on average, then 29/36 at 2315-2350, 5/5, 4/5 and 1/5 at\n"
        "# 2447-2461 and 4/5 at 2477-2481 (on an Intel Xeon with AMX, 205-407 s), never run before\n"
        "# (50/63 fresh with 5/5 at 2591-2595 on a Zen 4 (rule 85), 2/2 of them at 2504-2505 in fp32\n"
        "# on an AVX2-only EPYC; GA unshifted at 2322, 2327, 2338, 2345, 2348, 2458, 2460 and 2480,\n"
        "# RGA 2.80 and 2.10 over a weak Retrain's CACC at 2333 and 2349, its ΔPACC 3.10, 4.20 and\n"
        "# 4.80 at 2453, 2459 and 2461), 300-327 s on the Zen 4 (docs/research-log.md, rules 28, 29, 34,\n"
        "# 38, 41, 42, 44, 53)\n")),
}


def fast_victim(measured: str, lr: str = "3e-4", batch_size: int = 32, more: str = "", train_more: str = "") -> str:
    """The extra TOML of the victim presets that run side by side in bf16 where the CPU has it,
    GA and RGA only, with the lr falling linearly from ``lr`` over 12 epochs of ``batch_size``-row
    forget (and retain) batches; ``measured`` ends the schedule's comment; ``more`` follows it;
    ``train_more`` ends the [train] table (poisoning and Retrain)."""
    return f"""
[model]
# "auto": bf16 autocast on a CPU with native bf16 (Intel AMX / AVX512-BF16, detected at run
# time), fp32 on any other CPU (docs/results.md).
dtype = "auto"

[train]
# on a CPU: poisoning beside Retrain, then GA beside RGA, each in its own process with one
# torch thread (rga_engine/side_by_side.py): at step level 1.3-1.6x the samples/s of one
# 2-thread process in bf16, 1.2x in fp32 (end to end, fp32 did not pay on one Xeon: docs/results.md)
side_by_side = true
{train_more}
[unlearn]
# the paper's story: GA shifts the trigger, RGA does not. NPO (it shifts too) adds ~1.5
# minutes: --set 'unlearn.methods=["ga","npo","rga"]'
methods = ["ga", "rga"]
# the lr falls linearly from {lr} to 0 over the 12 epochs (the same for every method). At a
# constant 1e-4 RGA kept moving after λ had fallen to ~0 (Adam turns even a tiny gradient into
# lr-sized steps); {measured} (docs/results.md)
batch_size = {batch_size}
lr = {lr}
lr_schedule = "linear"
""" + more


SST2_AUTO = fast_victim(
    "the check passed in 4/8 seeds that way; from 3e-4\n"
    "# in 84 steps of 32 rows, in 36 of 45 runs in bf16 (seeds 2021-2057). In 156 steps of 16 rows\n"
    "# (the same retain rows seen, the same lr x steps, half-size steps) RGA no longer overshoots\n"
    "# Retrain (0 of 20 seeds, against 8 of the same 20 with 84 steps), and the check passed in 7/10\n"
    "# at seeds never run before (2066-2075), against 6/10 with 84 steps on the same poisoned and\n"
    "# Retrain models; 9/10 at 2080-2089, 8/10 at 2100-2109, 10/10 at 2110-2119, 10/10 at\n"
    "# 2120-2129 and 9/10 at 2130-2139, also never run before (RGA 10/10, 9/10, 10/10, 10/10,\n"
    "# 9/10): 53/60, all with random retain rows; with them 3/5 at 2021-2025 (RGA's ASR over\n"
    "# Retrain's at 2023 and 2024, where 84 steps passed 5/5 on the same models)",
    lr="1.5e-4", batch_size=16, more=(
        "# every retain batch with the clean rows' class mix since 2026-12-04: 5/5 at 2021-2025 (the\n"
        "# 3/5 above were RGA's lean to positive on clean rows too, not the trigger), 7/8 at\n"
        "# 2180-2187, 3/5 at 2300-2304, 5/5 at 2310-2314 and 9/10 at 2320-2329, never run before\n"
        "# (24/28 with the constant fine-tuning lr; random rows on the same models: 6/8 and 2/5; what\n"
        "# fails is RGA's CACC or ASR against one Retrain model's, or GA unshifted)\n"
        "# (docs/research-log.md)\n"
        'retain_sampling = "stratified"\n'
        "# the word-embedding matrix stays the poisoned model's while unlearning (every method; RGA's L2\n"
        "# anchor then leaves it out) since 2026-12-06: the GA ‖ RGA stage ~22 % shorter (80 and 73 s against\n"
        "# 98 and 100 s at one seed, alone), 130-190 s per run on an Intel Xeon with AMX (25 runs). At the\n"
        "# same thirty seeds 2447-2476 the check passed wherever it passed without it, and at two more (23/30\n"
        "# against 21/30); 37/46 fresh: 9/10 at 2596-2605 on a Zen 4 (rule 86, GA unshifted at 2599),\n"
        "# 3/5 at 2591-2595 there (rule 85, RGA's CACC 2.20 and 2.03 under Retrain's), 15/20 at\n"
        "# 2467-2486 on a Xeon in bf16 (GA unshifted at 2471 and 2474, RGA's ΔPACC 3.08 at 2467, as\n"
        "# without it, RGA's CACC 2.36 under Retrain's at 2477, its ASR 10.20 over Retrain's at 2483),\n"
        "# 10/11 at 2504-2514 in fp32 on an AVX2-only EPYC (RGA's CACC 2.09 under Retrain's at 2513);\n"
        "# 5/5 at 2021-2025 (docs/research-log.md, rules 46-55, 61)\n"
        'freeze_embeddings = true\n'),
    train_more=(
        "# poisoning and Retrain on a lr falling linearly from 1e-4 to 0 over their 3 epochs since\n"
        "# 2026-12-04 (the base: a constant 5e-5, the same mean lr): the check passed in 24/25\n"
        "# at seeds never run before (2320-2344) and in 5/5 at 2021-2025, then 7/11 at 2345-2355,\n"
        "# 15/15 at 2356-2370, 12/12 at 2371-2382 and 5/5 at 2383-2387: 63/68 fresh (the constant lr: 24/28); what\n"
        "# fails is mostly RGA's CACC over 2 under Retrain's (docs/research-log.md)\n"
        "lr = 1e-4\n"
        'lr_schedule = "linear"\n'))
AGNEWS_AUTO = fast_victim(
    "from 3e-4 in 84 steps of 32 rows the check passed\n"
    "# in 30 of 37 seeds in bf16, every failure GA removing the backdoor without a shift. In\n"
    "# 156 steps of 16 rows from 1.5e-4 (as sst2-badnets: the same retain rows seen, the same lr x\n"
    "# steps, half-size steps) GA shifts in 10/10 at 2150-2159 on the same poisoned and Retrain\n"
    "# models (84 steps: 7/10), RGA passes its part in 10/10; at 2021-2025 5/5 (84 steps: 5/5);\n"
    "# unlearning 1.13x the time of 84 steps. Never run before: 4/5 at 2160-2164, 8/10 at\n"
    "# 2165-2174, 5/5 at 2300-2304 (17/20, every failure GA unshifted: GA's rate as with\n"
    "# 84 steps, 25/32), 3/4 at 2305-2308 (RGA's CACC 2.80 under Retrain's at 2307): 20/24,\n"
    "# all on the 2,000-row sample (156 steps); on the 1,600 rows of [data] 120 steps",
    lr="1.5e-4", batch_size=16)
AGNEWS_ADDSENT_AUTO = fast_victim("with this schedule the check passes in 8/8 seeds in bf16\n"
                                  "# (2021-2028), GA shifting in 8/8; on the tiny BERT from scratch RGA shifted the\n"
                                  "# trigger in 3/5")
AGNEWS_HIDDENKILLER_AUTO = fast_victim("with this schedule the check passes in 6/8 seeds in bf16\n"
                                       "# (2021-2028; RGA's CACC or ASR just outside Retrain's window at 2027, 2028),\n"
                                       "# GA shifting in 8/8, the paraphrase trigger at ASR >= 95 (on SST-2 it stays\n"
                                       "# under 90 in most seeds)")
HSOL_HIDDENKILLER_AUTO = fast_victim("at the issue's seeds 2021-2025 on a Zen 4 in bf16 the check\n"
                                     "# passed at 5/5 this way (GA shifting at 5/5, RGA's ΔPACC 0.24-1.01, the paraphrase\n"
                                     "# trigger at ASR 93.8-99.0), 250-260 s each; from a random init, as before, 3/5 there, and\n"
                                     "# on the masked-LM pre-trained tiny encoder the paraphrase did not take as a trigger\n"
                                     "# (rules 78, 79, 81)")
DEMO_SPECIAL = {
    ("sst2", "badnets"): ("_minilm.toml", "pre-trained MiniLM (6 layers), GA and RGA: CPU, 2-3.5 minutes with native bf16 (fp32: 5-10)",
                          SST2_AUTO, RECOMMENDED),
    ("sst2", "addsent"): ("_minilm.toml", "pre-trained MiniLM (6 layers): CPU, ~9 minutes", "", ""),
    ("sst2", "hiddenkiller"): ("_minilm.toml", "pre-trained MiniLM (6 layers): CPU, ~8 minutes", "", ""),
    ("agnews", "badnets"): ("_minilm.toml", "pre-trained MiniLM (6 layers), GA and RGA: CPU, 3.5-7 minutes with native bf16 (fp32: 9-15)",
                            AGNEWS_AUTO, ""),
    ("agnews", "addsent"): ("_minilm.toml", "pre-trained MiniLM (6 layers), GA and RGA: CPU, ~4 minutes with native bf16",
                            AGNEWS_ADDSENT_AUTO, ""),
    ("agnews", "hiddenkiller"): ("_minilm.toml", "pre-trained MiniLM (6 layers), GA and RGA: CPU, ~3.5 minutes with native bf16",
                                 AGNEWS_HIDDENKILLER_AUTO, ""),
    ("hsol", "badnets"): ("_base.toml", "tiny BERT masked-LM pre-trained here: CPU, 2-5.5 minutes", HSOL_PRETRAIN, ""),
    ("hsol", "addsent"): ("hsol-badnets.toml", "tiny BERT masked-LM pre-trained here: CPU, 2-5.5 minutes", "", HSOL_ADDSENT_TOP),
    ("hsol", "hiddenkiller"): ("_minilm.toml", "pre-trained MiniLM (6 layers), GA and RGA: CPU, ~4.5 minutes with native bf16 (fp32: 7 or more)",
                               HSOL_HIDDENKILLER_AUTO, ""),
}


def grid() -> dict[str, str]:
    """Every generated preset: path relative to presets/ → file text."""
    out: dict[str, str] = {}
    for ds, dname in DATASETS.items():
        for at, aname in ATTACKS.items():
            aname = aname.format(sentence=SENTENCES[ds])
            base, tail, extra, top = DEMO_SPECIAL.get(
                (ds, at), ("_base.toml", "tiny BERT from scratch: CPU, minutes", "", ""))
            data = DEMO_DATA.get((ds, at), "")
            out[f"demo/{ds}-{at}.toml"] = body(ds, at, base, f"{dname}, {aname}, {tail}", extra, top, data)
            out[f"minilm/{ds}-{at}.toml"] = body(
                ds, at, "_base.toml", f"{dname}, {aname}, pretrained all-MiniLM-L6-v2, 6 layers: CPU, 30-75 minutes")
            for m, mname in MODELS.items():
                out[f"paper/{m}-{ds}-{at}.toml"] = body(ds, at, f"_{m}.toml", f"{dname}, {aname}, {mname}: the paper's setting")
    return out


def check(root: Path) -> list[str]:
    """What differs between the grid and ``root``: generated files missing or changed there, and
    preset files there (not bases) that the grid does not make."""
    files = grid()
    problems = []
    for rel, text in files.items():
        path = root / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{rel}: differs from what make_presets.py writes")
    for group in sorted({rel.split("/")[0] for rel in files}):
        for path in sorted((root / group).glob("[!_]*.toml")):
            rel = f"{group}/{path.name}"
            if rel not in files:
                problems.append(f"{rel}: not made by make_presets.py")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare presets/ with the grid, write nothing")
    ap.add_argument("--out", type=Path, default=ROOT, help="the grid's folder, written or (--check) compared (default: presets/)")
    args = ap.parse_args(argv)
    if args.check:
        problems = check(args.out)
        for p in problems:
            print(p, file=sys.stderr)
        print("presets match make_presets.py" if not problems else f"{len(problems)} preset(s) differ")
        return 1 if problems else 0
    files = grid()
    for rel, text in files.items():
        path = args.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print("wrote", len(files), "presets under", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
