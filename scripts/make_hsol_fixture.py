"""Write ``tests/fixtures/hsol-badnets-pretrained-2021.safetensors``: the masked-LM pre-trained
tiny encoder that ``presets/demo/hsol-badnets.toml`` makes at seed 2021 (10 epochs on HSOL's clean
training texts), in fp32 on one torch thread, as a pytest worker makes it on 2 cores.

``tests/test_science.py`` starts the HSOL demo from it (through the run's cache, under the key
the run computes), so the default suite spends its ~95 s of one core on poisoning, Retrain, GA
and RGA, not on pre-training again; the pre-training path has its own tests
(``tests/test_pipeline.py``, ``tests/test_distributed.py``). The file is a cache entry as the
engine writes it (safetensors, its checksum in the metadata), nothing edited. Rerun after a
change of the pre-training's numbers (the science test then says that its encoder is no longer
the preset's)::

    python scripts/make_hsol_fixture.py           # ~95 s
    python scripts/make_hsol_fixture.py --check   # pre-train again, compare (exit 1 if different)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "hsol-badnets-pretrained-2021.safetensors"
PRESET = "presets/demo/hsol-badnets.toml"
# the science test's settings: evaluation and the methods do not touch the pre-training
OVERRIDES = ["unlearn.methods=['ga','rga']", "unlearn.eval_every=0"]


def pretrain_here() -> bytes:
    """Pre-train as the preset does (fp32, one thread, the preset's seed) and return the cache
    entry the engine wrote (its tensors' checksum in the metadata, ``cache.CHECKSUM_KEY``)."""
    os.environ["RGA_TUI_CPU_BF16"] = "0"  # as tests/conftest.py: fp32 whatever the CPU
    import torch

    from rga_engine import cache, config, pipeline, pretrain_stage
    from rga_engine.events import ListSink

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RGA_TUI_CACHE"] = tmp
        cfg = config.load(str(ROOT / PRESET), OVERRIDES)
        run = pipeline.Run(cfg, ListSink(), None, None)
        run.setup()
        assert pretrain_stage.pretrain(run) == "finished"
        key = run.cache_key(pretrain_stage.STAGE, "train_clean", uses_train=False)
        return cache.path_for(cache.cache_root(cfg.output.cache_dir), pretrain_stage.STAGE, key).read_bytes()


def checksum(entry: Path) -> str:
    """The tensors' checksum the engine wrote into the entry (what ``cache.fetch`` verifies)."""
    from safetensors import safe_open

    from rga_engine.cache import CHECKSUM_KEY

    with safe_open(str(entry), "pt") as f:
        return f.metadata()[CHECKSUM_KEY]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="pre-train again and compare with the fixture")
    args = ap.parse_args()
    got = pretrain_here()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "fresh.safetensors"
            fresh.write_bytes(got)
            same = checksum(fresh) == checksum(FIXTURE)
        print(f"{FIXTURE.relative_to(ROOT)}: {'the same as' if same else 'DIFFERENT from'} pre-training here, bit for bit")
        return 0 if same else 1
    FIXTURE.write_bytes(got)
    print(f"wrote {FIXTURE.relative_to(ROOT)} ({FIXTURE.stat().st_size / 1e6:.1f} MB, checksum {checksum(FIXTURE)[:12]})")
    return 0

if __name__ == "__main__":
    sys.exit(main())
