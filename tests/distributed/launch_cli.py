"""``rga-tui`` as a launcher starts it (``accelerate launch ... tests/distributed/launch_cli.py run
PRESET ...``), with every write of the run folder and of the cache recorded as a line
``<rank> <what>`` in the file named by ``$RGA_TEST_WRITES``: tests/test_distributed.py checks
that only the main process writes, and each thing once. Otherwise exactly ``python -m rga_tui``."""

import os

from rga_engine import cache, events, pipeline

LOG = os.environ["RGA_TEST_WRITES"]


def record(what: str) -> None:
    with open(LOG, "a", encoding="utf-8") as f:
        f.write(f"{os.environ.get('RANK', '0')} {what}\n")


_save, _json, _sink = cache.save, pipeline.write_json_atomic, events.JsonlSink.__init__


def save(root, stage, key, model, meta=None):
    record(f"cache {stage}")
    return _save(root, stage, key, model, meta)


def write_json_atomic(path, obj):
    record(f"json {path.name}")
    return _json(path, obj)


def sink_init(self, path, *a, **k):
    record(f"events {os.path.basename(str(path))}")
    return _sink(self, path, *a, **k)


cache.save, pipeline.write_json_atomic, events.JsonlSink.__init__ = save, write_json_atomic, sink_init

if __name__ == "__main__":
    from rga_tui.cli import main

    main()
