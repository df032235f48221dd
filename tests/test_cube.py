"""CUBE forget-set detection (``unlearn.forget_set = "cube"``): config keys, the clustering on
synthetic vectors, and one tiny end-to-end run."""

import json

import numpy as np
import pytest

from rga_engine import config, cube, pipeline, side_by_side
from rga_engine.events import ListSink

TINY = "tests/fixtures/presets/tiny-sst2-badnets.toml"
# a whole tiny run with the real detection (UMAP included), small enough for the suite
CUBE_RUN = [
    'unlearn.forget_set="cube"', "data.train_limit=600", "data.test_limit=200", "train.epochs=1",
    "unlearn.epochs=1", "output.cache=false", "model.max_length=32", "model.hidden_size=32",
    "model.intermediate_size=64", "model.vocab_size=1000", "model.num_layers=1", "unlearn.cube_n_neighbors=15",
    "unlearn.cube_min_cluster_size=30", "unlearn.cube_min_samples=10",
]


@pytest.mark.parametrize("key, value, words", [
    ("unlearn.forget_set", '"detected"', "allowed values are oracle, cube"),
    ("unlearn.cube_components", "-1", "unlearn.cube_components"),
    ("unlearn.cube_components", "1", "unlearn.cube_components = 1"),
    ("unlearn.cube_n_neighbors", "1", "unlearn.cube_n_neighbors = 1"),
    ("unlearn.cube_min_dist", "1.5", "unlearn.cube_min_dist = 1.5"),
    ("unlearn.cube_metric", '"manhattan"', "unlearn.cube_metric"),
    ("unlearn.cube_min_cluster_size", "1", "unlearn.cube_min_cluster_size = 1"),
    ("unlearn.cube_min_samples", "0", "unlearn.cube_min_samples = 0"),
    ("unlearn.cube_min_samples", "1.5", "expected an integer"),
])
def test_bad_cube_keys_are_one_line_errors(key, value, words):
    with pytest.raises(config.ConfigError) as e:
        config.load(TINY, [f"{key}={value}"])
    assert words in str(e.value) and "\n" not in str(e.value)


def test_cube_keys_load_and_defaults():
    cfg = config.load(TINY, ['unlearn.forget_set="cube"', "unlearn.cube_components=0", "unlearn.cube_min_dist=0.1"])
    u = cfg.unlearn
    assert (u.forget_set, u.cube_components, u.cube_min_dist) == ("cube", 0, 0.1)
    d = config.UnlearnConfig()
    assert (d.forget_set, d.cube_components, d.cube_n_neighbors, d.cube_metric, d.cube_min_cluster_size,
            d.cube_min_samples) == ("oracle", 4, 100, "cosine", 150, 120)
    assert cube.min_dist_for("distilbert-base-uncased", -1.0) == 0.15
    assert cube.min_dist_for("bert-base-uncased", -1.0) == 0.25
    assert cube.min_dist_for("bert-base-uncased", 0.1) == 0.1


def test_effective_params_scale_down_on_few_rows():
    d = config.UnlearnConfig()
    assert cube.effective(10_000, d)["min_cluster_size"] == 150 and cube.effective(10_000, d)["min_samples"] == 120
    p = cube.effective(600, d)
    assert p["min_cluster_size"] == 60 and p["min_samples"] == 48 and p["n_neighbors"] == 100
    p = cube.effective(50, d)
    assert p["min_cluster_size"] == 5 and p["min_samples"] == 4 and p["n_neighbors"] == 49


def test_flag_finds_the_small_far_blob():
    """Two big class blobs and a small far poisoned blob: the small one is flagged, nothing else
    (raw vectors, no UMAP: ``cube_components = 0``, so no numba compile here)."""
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.3, (200, 8)) + np.eye(8)[0] * 10
    b = rng.normal(0, 0.3, (200, 8)) + np.eye(8)[1] * 10
    p = rng.normal(0, 0.3, (40, 8)) + np.eye(8)[2] * 10
    x = np.vstack([a, b, p])
    poisoned = np.r_[np.zeros(400, bool), np.ones(40, bool)]
    flagged = cube.flag(x, 2, components=0, n_neighbors=15, min_dist=0.25, metric="euclidean",
                        min_cluster_size=20, min_samples=10, seed=1)
    s = cube.scores(flagged, poisoned)
    assert s == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "flagged": 40, "poisoned": 40}


def test_scores_edge_cases():
    assert cube.scores(np.zeros(3, bool), np.zeros(3, bool))["f1"] == 0.0
    s = cube.scores(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool))
    assert (s["precision"], s["recall"], s["f1"]) == (0.5, 0.5, 0.5)


@pytest.mark.slow(seconds=33)
def test_cube_run_end_to_end(tmp_path):
    """One tiny run with ``--set unlearn.forget_set="cube"`` (UMAP included): a detect stage,
    ``detection`` in summary.json, the line in results.md, GA on the detected forget set."""
    pytest.importorskip("umap")
    cfg = config.load(TINY, CUBE_RUN + ['unlearn.methods=["ga"]', "train.retrain=false"])
    sink = ListSink()
    run_dir = tmp_path / "run"
    s = pipeline.run(cfg, sink, run_dir=run_dir)
    assert s["status"] == "finished", s["errors"]
    on_disk = json.loads((run_dir / "summary.json").read_text())
    det = on_disk["detection"]
    assert set(det) == {"precision", "recall", "f1", "flagged", "poisoned"} and det["poisoned"] > 0
    stages = [e["stage"] for e in sink.of_type("stage_started")]
    assert stages == ["poison", "detect", "unlearn:ga"]
    fin = [e for e in sink.of_type("stage_finished") if e["stage"] == "detect"][0]
    assert fin["metrics"]["flagged"] == det["flagged"]
    assert "CUBE detection" in (run_dir / "results.md").read_text()
    # the engine's own log line gives the scores as every other view does (percent)
    from rga_engine.report import detection_scores

    line = [e["message"] for e in sink.of_type("log") if e["message"].startswith("detect: flagged")][0]
    assert line.endswith(", ".join(f"{label} {v} %" for label, v in detection_scores(det))), line
    # the run folder's picture of the detection: every row with 2-D coordinates, and the SVG
    from rga_engine.detection_files import read_points

    points, counts = read_points(run_dir / "detection.csv")
    assert len(points) == sum(counts.values()) and counts["caught"] + counts["false_alarm"] == det["flagged"]
    assert counts["caught"] + counts["missed"] == det["poisoned"]
    assert (run_dir / "detection.svg").read_text().startswith("<svg")


def test_tui_state_and_headless_show_the_detect_stage():
    from rga_tui.headless import detection_text
    from rga_tui.state import RunState, is_stage_name

    assert is_stage_name("detect")
    s = RunState()
    s.apply_many([
        {"type": "run_started", "config": {"unlearn": {"forget_set": "cube", "methods": ["ga"]},
                                           "train": {"retrain": False}}},
        {"type": "stage_started", "stage": "detect", "total_steps": 3},
        {"type": "step", "stage": "detect", "step": 2, "loss": None},
        {"type": "stage_finished", "stage": "detect", "seconds": 1.0,
         "metrics": {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "flagged": 8, "poisoned": 4}},
    ])
    assert list(s.stages)[:2] == ["poison", "detect"] and s.stages["detect"].status == "done"
    assert s.detection["flagged"] == 8
    assert "detect" not in [r.stage for r in s.results_rows()] and s.stages["detect"] not in s.board_stages
    assert detection_text(s.detection) == "flagged 8 · 4 truly poisoned  precision 50.00  recall 100.00  F1 66.67"


def test_run_markdown_has_the_detection_line():
    from rga_engine.report import detection_line, run_markdown

    s = {"preset": "p", "models": {}, "detection": {"precision": 0.5, "recall": 1.0, "f1": 0.6667,
                                                    "flagged": 8, "poisoned": 4}}
    line = detection_line(s)
    assert line == "CUBE detection: flagged 8 rows, 4 truly poisoned: precision 50.00 %, recall 100.00 %, F1 66.67 %"
    assert line in run_markdown(s) and detection_line({"models": {}}) == ""


def test_one_formatting_of_the_cube_scores_everywhere():
    """The engine's log line, results.md, the headless line and the TUI panel show the same
    percent strings (the engine's log showed fractions, "precision 0.500", until 2026-12-03);
    a missing or non-finite score is left out everywhere, not shown as "nan"."""
    from rga_engine.report import detection_line, detection_scores
    from rga_tui.headless import detection_text
    from rga_tui.widgets.detection import scores_text

    d = {"precision": 0.5, "recall": float("nan"), "f1": 0.6667, "flagged": 8, "poisoned": 4}
    assert detection_scores(d) == [("precision", "50.00"), ("F1", "66.67")]
    assert detection_line({"detection": d}).endswith(": precision 50.00 %, F1 66.67 %")
    assert detection_text(d) == "flagged 8 · 4 truly poisoned  precision 50.00  F1 66.67"
    assert scores_text(d).plain == "precision 50.00  F1 66.67\nflagged 8 rows · 4 truly poisoned"
    assert "nan" not in detection_line({"detection": d}).lower()


def _blobs(seed: int = 0):
    """Two class blobs and a small far poisoned blob, 4-D (the shape of CUBE's UMAP space)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(4)[:3] * 8
    sizes = (120, 120, 20)
    x = np.vstack([rng.normal(0, 0.4, (k, 4)) + c for k, c in zip(sizes, centres)]).astype(np.float32)
    poisoned = np.r_[np.zeros(240, bool), np.ones(20, bool)]
    return x, poisoned


def test_detection_files_hold_the_2d_scatter(tmp_path):
    """cube.project_2d on synthetic 4-D vectors (a 2-D UMAP of them; every row, or a seeded sample),
    then detection.csv (a line per row: row, label, poisoned, flagged, x, y) and detection.svg."""
    pytest.importorskip("umap")
    import xml.etree.ElementTree as ET

    from rga_engine import detection_files

    x, poisoned = _blobs()
    flagged = poisoned.copy()
    flagged[0], flagged[-1] = True, False  # one false alarm, one missed row
    rows, xy = cube.project_2d(x, min_dist=0.25, seed=3)
    assert rows.tolist() == list(range(260)) and xy.shape == (260, 2) and np.isfinite(xy).all()
    # the blobs stay apart in 2-D: every row's nearest neighbour is in its own blob
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    np.fill_diagonal(d, np.inf)
    blob = np.repeat([0, 1, 2], (120, 120, 20))
    assert (blob[d.argmin(1)] == blob).all()
    again = cube.project_2d(x, min_dist=0.25, seed=3)
    assert np.allclose(again[1], xy)  # seeded: the same picture twice
    sub_rows, sub_xy = cube.project_2d(x, min_dist=0.25, seed=3, max_rows=100)
    assert len(sub_rows) == 100 == len(set(sub_rows.tolist())) and list(sub_rows) == sorted(sub_rows)
    assert sub_xy.shape == (100, 2)
    two = np.arange(10, dtype=np.float32).reshape(5, 2)  # a 2-D space is drawn as it is
    assert cube.project_2d(two, min_dist=0.1, seed=0)[1].tolist() == two.tolist()

    labels = [0] * 120 + [1] * 140
    detection_files.write_files(tmp_path, labels, poisoned.tolist(), flagged.tolist(), (sub_rows, sub_xy),
                                "CUBE detection · synthetic", "precision 95.00 %")
    lines = (tmp_path / "detection.csv").read_text().splitlines()
    assert lines[0] == "row,label,poisoned,flagged,x,y" and len(lines) == 261
    first = lines[1].split(",")
    assert first[:4] == ["0", "0", "0", "1"] and (first[4] != "") == (0 in sub_rows)
    points, counts = detection_files.read_points(tmp_path / "detection.csv")
    assert len(points) == 100
    assert counts == {"clean": 239, "false_alarm": 1, "missed": 1, "caught": 19}
    svg = ET.fromstring((tmp_path / "detection.svg").read_text())
    circles = svg.findall(".//{http://www.w3.org/2000/svg}circle")
    assert len(circles) == 100 + 4  # the points and the legend's four dots
    text = (tmp_path / "detection.svg").read_text()
    assert "poisoned · missed 1" in text and "100 of 260 rows drawn" in text


@pytest.mark.parametrize("flag_all, words", [
    (True, "CUBE flagged all 200 training rows"),
    (False, "CUBE flagged none of the 200 training rows"),
])
def test_guard_names_the_cube_keys(flag_all, words):
    d = config.UnlearnConfig()
    params = cube.effective(200, d)
    mask = np.full(200, flag_all)
    msg = cube.guard(mask, 2, params, d)
    assert msg.startswith(words) and "\n" not in msg
    assert "unlearn.cube_min_cluster_size (now 150, 20 on these 200 rows)" in msg
    assert "unlearn.cube_min_samples (now 120, 16 on these 200 rows)" in msg
    assert 'unlearn.forget_set = "oracle"' in msg
    mask[0] = not flag_all
    assert cube.guard(mask, 2, params, d) is None



@pytest.mark.skipif(side_by_side.cpu_cores() < 2, reason="side by side needs two cores")
def test_side_by_side_with_cube_the_methods_wait_for_both_stages_and_the_detection(tmp_path, monkeypatch):
    """CUBE detects in the parent with every core, so side by side the methods start only after
    poison and Retrain are over and the detection has run (no early start, rga_engine/side_by_side.py).
    The order is the subject here, not the detection: the clustering flags a fixed tenth of the
    rows and the picture is skipped, so this process compiles no UMAP (~15 s of one core;
    test_cube_run_end_to_end detects for real)."""
    monkeypatch.setattr(cube, "cluster", lambda space, c, **k: np.arange(len(space)) % 10 == 0)
    monkeypatch.setattr(cube, "project_2d", lambda *a, **k: None)
    cfg = config.load(TINY, CUBE_RUN + ['unlearn.methods=["ga","rga"]', "train.side_by_side=true",
                                        "unlearn.cube_components=0"])
    sink = ListSink()
    s = pipeline.run(cfg, sink, run_dir=tmp_path / "run")
    assert s["status"] == "finished", s["errors"]
    assert list(s["models"]) == ["poisoned", "retrain", "ga", "rga"] and "detection" in s
    order = [(e["type"], e["stage"]) for e in sink.events if e["type"] in ("stage_started", "stage_finished")]
    detect = order.index(("stage_started", "detect"))
    assert ("stage_finished", "poison") in order[:detect] and ("stage_finished", "retrain") in order[:detect]
    assert all(order.index(("stage_started", m)) > order.index(("stage_finished", "detect"))
               for m in ("unlearn:ga", "unlearn:rga"))

@pytest.mark.parametrize("flag_all", [True, False])
def test_detection_with_an_empty_side_stops_the_run_before_unlearning(tmp_path, monkeypatch, flag_all):
    """CUBE flagging every row (no retain set) or none (no forget set) fails the detect stage with
    one line naming the unlearn.cube_* keys; Retrain and unlearning never start. (The clustering is
    replaced by an all / nothing mask and the picture skipped: no UMAP here.)"""
    monkeypatch.setattr(cube, "cluster", lambda space, c, **k: np.full(len(space), flag_all))
    monkeypatch.setattr(cube, "project_2d", lambda *a, **k: None)
    cfg = config.load(TINY, [
        'unlearn.forget_set="cube"', "unlearn.cube_components=0", "data.train_limit=200", "data.test_limit=50",
        "train.epochs=1", 'unlearn.methods=["ga"]', "output.cache=false", "model.max_length=16",
        "model.hidden_size=16", "model.intermediate_size=32", "model.vocab_size=500", "model.num_layers=1",
    ])
    sink = ListSink()
    run_dir = tmp_path / "run"
    s = pipeline.run(cfg, sink, run_dir=run_dir)
    assert s["status"] == "error"
    msg = s["errors"]["detect"]
    assert msg.startswith("CUBE flagged all" if flag_all else "CUBE flagged none") and "\n" not in msg
    assert "unlearn.cube_min_cluster_size" in msg and "unlearn.cube_min_samples" in msg
    assert [e["stage"] for e in sink.of_type("stage_started")] == ["poison", "detect"]
    assert [e["message"] for e in sink.of_type("error")] == [msg]
    on_disk = json.loads((run_dir / "summary.json").read_text())
    lines = (run_dir / "detection.csv").read_text().splitlines()
    assert on_disk["detection"]["flagged"] == (len(lines) - 1 if flag_all else 0)
    assert all(line.endswith(",,") for line in lines[1:])  # no picture: no coordinates
    from rga_tui.headless import _failure_reason

    assert _failure_reason(on_disk, {}) == f"stage detect failed: {msg}"  # the command line's one line


def test_detection_cache_is_reused_and_a_damaged_entry_is_detected_again(tmp_path, monkeypatch):
    """The second run loads the flagged rows and the picture from detect-<key>.json (no embedding
    steps, ``cached`` true); an entry whose picture is damaged is logged, detected again and
    reported as not cached. (Clustering and picture replaced: no UMAP here.)"""
    calls = []

    def fake_cluster(space, c, **k):
        calls.append(len(space))
        return np.arange(len(space)) % 5 == 0  # every fifth row flagged

    monkeypatch.setattr(cube, "cluster", fake_cluster)
    monkeypatch.setattr(cube, "project_2d", lambda space, **k: (np.arange(len(space)), np.zeros((len(space), 2))))
    cfg = config.load(TINY, [
        'unlearn.forget_set="cube"', "unlearn.cube_components=0", "data.train_limit=200", "data.test_limit=50",
        "train.epochs=1", 'unlearn.methods=["ga"]', "unlearn.epochs=1", "train.retrain=false", "output.cache=true",
        f'output.cache_dir="{(tmp_path / "cache").as_posix()}"', "model.max_length=16", "model.hidden_size=16",
        "model.intermediate_size=32", "model.vocab_size=500", "model.num_layers=1",
    ])

    def detect_events():
        sink = ListSink()
        s = pipeline.run(cfg, sink)
        assert s["status"] == "finished", s["errors"]
        started = [e for e in sink.of_type("stage_started") if e["stage"] == "detect"]
        finished = [e for e in sink.of_type("stage_finished") if e["stage"] == "detect"]
        logs = [e["message"] for e in sink.of_type("log")]
        return s, started[0], finished[0], logs

    first, started, finished, _ = detect_events()
    (n,) = calls  # the rows of train_poisoned
    assert started["total_steps"] > 0 and finished["metrics"]["cached"] is False
    (entry,) = (tmp_path / "cache").glob("detect-*.json")
    saved = json.loads(entry.read_text())
    assert saved["flagged"] == list(range(0, n, 5)) and len(saved["scatter"]["x"]) == n

    second, started, finished, logs = detect_events()
    assert calls == [n], "the cached detection was computed again"
    assert started["total_steps"] == 0 and finished["metrics"]["cached"] is True
    assert any("loaded cached detection" in m for m in logs)
    assert second["detection"] == first["detection"]

    saved["scatter"]["x"] = 5  # damaged picture: len() of an int
    entry.write_text(json.dumps(saved))
    third, started, finished, logs = detect_events()
    assert calls == [n, n] and finished["metrics"]["cached"] is False
    assert any("is damaged" in m and "detecting again" in m for m in logs)
    assert third["detection"] == first["detection"]
