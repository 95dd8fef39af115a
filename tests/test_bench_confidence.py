"""scripts/bench_confidence.py --from-predictions: the curve of stored predictions; bad files refused."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    import bench_confidence

    return bench_confidence


def _write(path: Path, rows: list[dict]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return path


def test_the_curve_of_stored_predictions(bench, tmp_path):
    rows = [{"id": f"q{i}", "correct": right, "confidence": conf, "agreement": conf, "gold_error": None}
            for i, (conf, right) in enumerate([(1.0, True), (1.0, False), (0.5, True), (0.0, False)])]
    rows.append({"id": "bad-gold", "correct": False, "confidence": 1.0, "gold_error": "syntax"})
    path = _write(tmp_path / "pred-movies-plus_candidates.jsonl.gz", rows)
    out = tmp_path / "curve.json"
    assert bench.main(["--out", str(out), "--from-predictions", str(path)]) == 0
    (run,) = json.loads(out.read_text())["runs"]
    assert (run["graph"], run["config"], run["n"], run["correct"]) == ("movies", "plus_candidates", 4, 2)
    by_t = {c["threshold"]: (c["answered"], c["accuracy"]) for c in run["curve"]}
    assert by_t[0.0] == (4, 0.5) and by_t[0.5] == (3, 0.6667) and by_t[1.0] == (2, 0.5)
    assert run["curve"] == bench.curve(rows)  # one function for both modes


def test_a_file_without_confidence_is_refused_in_one_line(bench, tmp_path, capsys):
    path = _write(tmp_path / "pred-x-y.jsonl.gz", [{"id": "q", "correct": True, "gold_error": None}])
    assert bench.main(["--out", str(tmp_path / "o.json"), "--from-predictions", str(path)]) == 2
    err = capsys.readouterr().err
    assert "confidence" in err and err.count("\n") == 1
    missing = str(tmp_path / "none.gz")
    assert bench.main(["--out", str(tmp_path / "o.json"), "--from-predictions", missing]) == 2
    assert "Traceback" not in capsys.readouterr().err
