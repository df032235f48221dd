"""Distil all-MiniLM-L6-v2 into a shallower student (a lead-finder for issue 15's fp32 time).

The student is a BERT with MiniLM's own word embeddings and the teacher's layers ``--layers``
(default 0,2,4: every other layer, as DistilBERT starts) as its initialisation. It is trained to
give, after its k-th layer, the hidden states MiniLM gives after its layer ``2k+1`` (token-level
mean squared error over the real tokens of every student layer; the word embeddings frozen, so the
student keeps the teacher's vocabulary space). The corpus is the clean *training* texts of the three
shipped datasets (SST-2, HSOL, AG News: 20,679 distinct texts; no test text, no label, no trigger),
rows of similar length batched together, the batches shuffled by ``--seed``, for about ``--minutes``
of training (the step count is set from the first 30 steps' speed, which run slower than the rest:
``--minutes 25`` gave 1,937 steps, 3.0 epochs, in 22 minutes on a 2-core AVX2-only EPYC); 5 %
warm-up, then a linear lr decay.

Reported before and after: the cosine similarity of the student's and the teacher's mean-pooled
last hidden state (MiniLM's sentence embedding) on SST-2's dev texts, next to the same number for
the plain cut to the first layers (``model.keep_layers``). The student folder (safetensors,
MiniLM's tokenizer files, this run's settings in ``distill.json``) loads as ``model.name = FOLDER``::

    python scripts/distill_minilm.py --out /tmp/minilm-3 --minutes 20
    rga-tui run presets/demo/sst2-badnets.toml --set model.name=/tmp/minilm-3
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def texts(split: str, names=("sst2", "hsol", "agnews")) -> list[str]:
    """The texts of one split (``train``, ``dev``) of the packaged datasets."""
    from rga_engine.data.loaders import load_embedded

    return [e.text for n in names for e in getattr(load_embedded(n), split)]


def batches(tok, rows: list[str], size: int, max_length: int, rng: random.Random | None = None):
    """Batches of ``size`` rows, padded to their longest; with ``rng``, rows of similar length
    batched together (little padding) and the batches in a random order."""
    if rng is not None:
        lengths = [len(x) for x in tok(rows, truncation=True, max_length=max_length)["input_ids"]]
        order = sorted(range(len(rows)), key=lambda i: (lengths[i], rng.random()))
        groups = [order[i:i + size] for i in range(0, len(order), size)]
        rng.shuffle(groups)
    else:
        groups = [list(range(i, min(i + size, len(rows)))) for i in range(0, len(rows), size)]
    for g in groups:
        enc = tok([rows[i] for i in g], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        yield enc["input_ids"], enc["attention_mask"]


def mean_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1)


@torch.no_grad()
def cosine(student, teacher, tok, rows: list[str], max_length: int) -> float:
    student.eval()
    sims = []
    for ids, mask in batches(tok, rows, 128, max_length):
        s = mean_pool(student(input_ids=ids, attention_mask=mask).last_hidden_state, mask)
        t = mean_pool(teacher(input_ids=ids, attention_mask=mask).last_hidden_state, mask)
        sims.append(torch.nn.functional.cosine_similarity(s, t))
    return torch.cat(sims).mean().item()


def make_student(teacher, layers: list[int]):
    from transformers import BertModel

    cfg = teacher.config.__class__.from_dict(teacher.config.to_dict())
    cfg.num_hidden_layers = len(layers)
    student = BertModel(cfg)
    student.embeddings.load_state_dict(teacher.embeddings.state_dict())
    for i, k in enumerate(layers):
        student.encoder.layer[i].load_state_dict(teacher.encoder.layer[k].state_dict())
    if teacher.pooler is not None and student.pooler is not None:
        student.pooler.load_state_dict(teacher.pooler.state_dict())
    return student


def main(argv=None) -> int:
    from transformers import AutoTokenizer, BertModel

    from rga_engine.models import minilm_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--layers", default="0,2,4", help="teacher layers that initialise the student's")
    ap.add_argument("--minutes", type=float, default=20.0, help="training time (the step count is set from the first steps' speed)")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    layers = [int(x) for x in args.layers.split(",")]
    torch.manual_seed(args.seed)
    src = minilm_path()
    tok = AutoTokenizer.from_pretrained(src)
    teacher = BertModel.from_pretrained(src).eval()
    n_t = teacher.config.num_hidden_layers
    # student layer i imitates hidden_states[targets[i]], the teacher's output after its layer targets[i] - 1
    targets = [round((i + 1) * n_t / len(layers)) for i in range(len(layers))]
    student = make_student(teacher, layers)
    cut = make_student(teacher, list(range(len(layers))))  # model.keep_layers = len(layers)
    dev = texts("dev", ("sst2",))
    report = {"layers": layers, "targets": [t - 1 for t in targets], "seed": args.seed, "lr": args.lr,
              "batch_size": args.batch_size, "max_length": args.max_length,
              "cosine_dev_cut_first_layers": cosine(cut, teacher, tok, dev, args.max_length),
              "cosine_dev_before": cosine(student, teacher, tok, dev, args.max_length)}
    print(json.dumps(report), flush=True)
    corpus = sorted(set(texts("train")))
    rng = random.Random(args.seed)
    report["corpus_texts"] = len(corpus)

    student.embeddings.word_embeddings.weight.requires_grad_(False)
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    total = None
    step, t0, losses = 0, time.perf_counter(), []
    while total is None or step < total:
        for ids, mask in batches(tok, corpus, args.batch_size, args.max_length, rng):
            student.train()
            with torch.no_grad():
                th = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
            sh = student(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
            m = mask.unsqueeze(-1).float()
            loss = sum((((sh[i + 1] - th[t]) ** 2) * m).sum() / (m.sum() * sh[i + 1].shape[-1])
                       for i, t in enumerate(targets))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            if total is not None:  # 5 % warm-up, then linear decay to 0
                warm = max(1, total // 20)
                for g in opt.param_groups:
                    g["lr"] = args.lr * min((step + 1) / warm, max(0.0, (total - step) / (total - warm)))
            else:
                for g in opt.param_groups:
                    g["lr"] = args.lr * 0.1  # the first steps, while the speed is measured
            opt.step()
            step += 1
            losses.append(loss.item())
            if step == 30 and total is None:
                per = (time.perf_counter() - t0) / step
                total = max(step + 1, int(args.minutes * 60 / per))
                print(f"{per * 1000:.0f} ms/step: {total} steps (~{total * args.batch_size / len(corpus):.1f} epochs)", flush=True)
            if step % 100 == 0:
                print(f"step {step}/{total} loss {sum(losses[-100:]) / len(losses[-100:]):.4f} "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
            if total is not None and step >= total:
                break
    report.update(steps=step, epochs=round(step * args.batch_size / len(corpus), 2),
                  seconds=round(time.perf_counter() - t0, 1), final_loss=sum(losses[-100:]) / len(losses[-100:]),
                  cosine_dev_after=cosine(student, teacher, tok, dev, args.max_length))
    args.out.mkdir(parents=True, exist_ok=True)
    student.save_pretrained(args.out, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (src / f).exists():
            shutil.copy(src / f, args.out / f)
    (args.out / "distill.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
