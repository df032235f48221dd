#!/usr/bin/env python
"""Train-step time with the bottom k layers frozen (``model.freeze_layers``), one process.

    python benchmarks/freeze_step.py                          # MiniLM, fp32, 2 threads, k = 0, 2, 3
    python benchmarks/freeze_step.py --dtype bf16 --threads 1 --layers 0,3

Each k builds the model as a run does (``rga_engine.models.build``), then times fine-tuning steps
on the first SST-2 training rows (32 rows, padded to the batch's longest, at most
``--max-length`` tokens; AdamW over the trainable weights); the first ``--warmup`` steps are not
counted. Rounds go over every k in turn, and each k keeps its best round's median step, so a
drift of the machine hits every k alike. Not a test: run it alone on an idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from rga_engine import models  # noqa: E402
from rga_engine.config import ModelConfig  # noqa: E402
from rga_engine.data import load_embedded  # noqa: E402


def step_times(model_name: str, k: int, texts: list[str], dtype: str, steps: int, warmup: int,
               max_length: int, batch: int) -> tuple[float, int, int]:
    """The median step time, and how many weights train out of how many (the benchmark's own
    check that freezing happened: fewer weights train at k > 0)."""
    torch.manual_seed(0)
    b = models.build(ModelConfig(name=model_name, max_length=max_length, freeze_layers=k), 2, texts, 0)
    m = b.model
    m.train()
    trained = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trained, lr=1e-5)
    times = []
    for i in range(warmup + steps):
        rows = texts[(i * batch) % len(texts):][:batch]
        enc = b.tokenizer(rows, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
            logits = m(**enc).logits
        loss = torch.nn.functional.cross_entropy(logits.float(), torch.zeros(len(rows), dtype=torch.long))
        loss.backward()
        opt.step()
        opt.zero_grad()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return statistics.median(times), sum(p.numel() for p in trained), sum(p.numel() for p in m.parameters())


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--model", default="minilm", help="model.name (default minilm)")
    ap.add_argument("--layers", default="0,2,3", help="the k values, comma-separated (default 0,2,3)")
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=64)
    a = ap.parse_args(argv)
    ks = [int(x) for x in a.layers.split(",")]
    torch.set_num_threads(a.threads)
    texts = [ex.text for ex in load_embedded("sst2").train[:2000]]
    best: dict[int, float] = {}
    weights: dict[int, tuple[int, int]] = {}
    for _ in range(a.rounds):
        for k in ks:
            t, n_trained, n_all = step_times(a.model, k, texts, a.dtype, a.steps, a.warmup, a.max_length, a.batch)
            best[k] = min(best.get(k, t), t)
            weights[k] = (n_trained, n_all)
    base = best[ks[0]]
    print(f"{a.model}, {a.dtype}, {a.threads} thread(s), {a.batch} rows x <= {a.max_length} tokens:")
    for k in ks:
        print(f"  freeze_layers {k}: median step {best[k] * 1000:.0f} ms, {a.batch / best[k]:.0f} samples/s, "
              f"{base / best[k]:.2f}x of freeze_layers {ks[0]}; {weights[k][0]:,} of {weights[k][1]:,} weights trained")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
