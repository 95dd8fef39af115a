"""The GPU staging scripts' plumbing that runs here: a model file split into carry folders and joined back
(scripts/gpu_stage.py → scripts/gpu_run.py), and each base's own home."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import tomllib
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("parts, size", [(2, 1001), (5, 4099), (5, 3)])
def test_a_split_file_joins_back_and_a_wrong_part_is_refused(tmp_path, parts, size):
    stage, run = _script("gpu_stage"), _script("gpu_run")
    src = tmp_path / "model.gguf"
    src.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    folders = [tmp_path / f"g{i + 1}" for i in range(parts)]
    for f in folders:
        f.mkdir()
    stage.split_file(src, folders, "gguf2")
    files = [f / f"gguf2.part{i}" for i, f in enumerate(folders)]
    assert max(p.stat().st_size for p in files) <= -(-size // parts)
    assert run.join_parts(folders[-1] / "gguf2.json", files) == ("model.gguf", src.read_bytes())
    files[0].write_bytes(files[0].read_bytes()[:-1] + b"?")
    with pytest.raises(RuntimeError, match="do not make the staged file"):
        run.join_parts(folders[-1] / "gguf2.json", files)


def test_gemma_parts_fit_beside_the_tree_and_model2_joins_however_many_there_are(tmp_path, monkeypatch):
    stage, run = _script("gpu_stage"), _script("gpu_run")
    mib = 2**20
    assert stage.gemma_parts(253 * mib, 10 * mib) == ["g1", "g2", "g3", "g4", "g5"]  # never fewer than five
    six = stage.gemma_parts(253 * mib, int(16.5 * mib))  # the tree of 2026-12-03: 50.6 MB parts no longer fit
    assert six == [f"g{i}" for i in range(1, 7)]
    assert -(-253 * mib // len(six)) + int(16.5 * mib) < stage.LIMIT
    with pytest.raises(SystemExit, match="leaves no room"):
        stage.gemma_parts(253 * mib, 63 * mib)
    # model2 reads the part count from the carried folder with gguf2.json; earlier parts wait in TMP
    src = tmp_path / "model.gguf"
    src.write_bytes(bytes(range(256)) * 7 + b"tail")
    gpu = tmp_path / "repo" / ".gpu"
    folders = [gpu / f"g{i}" for i in range(1, 7)]
    for f in folders:
        f.mkdir(parents=True)
    stage.split_file(src, folders, "gguf2")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(run, "ROOT", tmp_path / "repo")
    monkeypatch.setattr(run, "TMP", tmp)
    for n in range(1, 6):
        run.phase_gpart(str(n))
    joined = {}
    monkeypatch.setattr(run, "home", lambda g, base=None: tmp_path / "home")
    monkeypatch.setattr(run, "_convert", lambda base: joined.setdefault("base", base))
    run.phase_model2()
    assert (tmp_path / "home" / "models" / "gguf" / "model.gguf").read_bytes() == src.read_bytes()
    assert joined == {"base": run.GEMMA}


def test_each_base_has_its_own_home_and_result_names():
    run = _script("gpu_run")
    assert run.home("movies", run.DEFAULT_BASE) == Path("/tmp/h-movies")
    assert run.home("movies", run.GEMMA) == Path("/tmp/h-movies-gemma")
    env = run.env_for("movies", run.GEMMA)
    assert env["CYPHERLOOP_HOME"] == "/tmp/h-movies-gemma" and env["CYPHERLOOP_BASE_MODEL"] == "gemma3-270m"


def test_the_cascade_serves_the_second_base_and_benchmarks_the_default_home(monkeypatch):
    monkeypatch.setenv("GPU_RUN_SERVE_ARGS", "--continuous-batching")
    run = _script("gpu_run")
    serve = run.serve_command("/tmp/h-movies-gemma/m", 8123, "cuda")
    assert serve[serve.index("serve") + 1] == "/tmp/h-movies-gemma/m"
    assert serve[-7:] == ["--host", "127.0.0.1", "--port", "8123", "--device", "cuda",
                          "--continuous-batching"]
    bench = run.cascade_command("movies", "/tmp/h-movies-gemma/m", "http://127.0.0.1:8123/v1", None)
    opts = dict(zip(bench[2::2], bench[3::2], strict=False))
    assert bench[1] == "scripts/bench_confidence.py"
    assert opts["--home"] == str(run.home("movies", run.DEFAULT_BASE))
    assert opts["--limit"] == "0" and opts["--dataset"] == str(run.DEV["movies"])
    assert opts["--escalate-model"] == "/tmp/h-movies-gemma/m"
    assert opts["--escalate-base-url"] == "http://127.0.0.1:8123/v1"
    assert run.cascade_command("movies", "m", "u", 30)[bench.index("--limit") + 1] == "30"


def test_the_latency_phase_benches_the_product_defaults_then_the_batched_eval_on_the_same_questions(
        monkeypatch, tmp_path):
    monkeypatch.setenv("GPU_RUN_TMP", str(tmp_path))
    monkeypatch.setenv("GPU_RUN_LIMIT", "3")
    run = _script("gpu_run")
    run.DEV["movies"] = tmp_path / "dev.jsonl"
    run.DEV["movies"].write_text("".join(f'{{"id": "q{i}", "question": "q{i}?"}}\n' for i in range(8)))
    calls = []
    def bounded(args, env, log, limit):
        calls.append((args, env, limit))
        log.write_text('{"n": 3, "wall_s": 1.5}')
        return 0

    monkeypatch.setattr(run, "_bounded", bounded)
    run.OUT.mkdir(parents=True)
    run.phase_latency("movies")
    (bench, env, limit), (evaluation, eval_env, eval_limit), *levers = calls
    (one128, env128, _), (generate64, gen_env, _) = levers
    assert bench[1] == "scripts/bench_latency.py" and "--thread-check" in bench
    assert bench[bench.index("--backends") + 1].split(",") == [
        "transformers+candidates=4", "transformers+candidates=1",
        "transformers+candidates=4+candidates_one_call=false+graphed_compile=false"]
    assert bench[bench.index("--n") + 1] == "3" and bench[bench.index("--warmup") + 1] == "2"
    assert "CYPHERLOOP_GENERATION_CACHE" not in env and env["CYPHERLOOP_MAX_ATTEMPTS"] == "3"
    assert env["CYPHERLOOP_TEMPERATURE"] == "0"  # the product's default
    asked = run.OUT / "latency-movies-questions.jsonl"  # the bench's timed questions, for the eval
    assert [line[8:10] for line in asked.read_text().splitlines()] == ["q2", "q3", "q4"]
    assert evaluation[evaluation.index("--dataset") + 1] == str(asked)
    assert evaluation[evaluation.index("--batch-size") + 1] == "64"
    assert (limit, eval_limit) == (run.LATENCY_S, run.LATENCY_EVAL_S)
    assert json.loads((run.OUT / "latency-movies-eval.json").read_text())["questions_per_s"] == 2.0
    # the product's default first (graphed batches on CUDA), round 6's path (generate, two calls) as a lever
    assert not any(k in eval_env for k in ("CYPHERLOOP_BATCH_CACHE", "CYPHERLOOP_DECODE_LOOP"))
    assert gen_env["CYPHERLOOP_DECODE_LOOP"] == "generate"
    assert gen_env["CYPHERLOOP_CANDIDATES_ONE_CALL"] == "false"
    assert "CYPHERLOOP_DECODE_LOOP" not in env128
    assert [(a[a.index("--batch-size") + 1], a[a.index("--workers") + 1])
            for a in (evaluation, one128, generate64)] == [("64", "1"), ("128", "8"), ("64", "1")]
    lever = json.loads((run.OUT / "latency-movies-eval-128-8.json").read_text())
    assert (lever["batch_size"], lever["workers"], lever["extra_settings"]) == (128, 8, {})
    for _ in range(2):  # the same configuration again (a later call, or twice in one list): kept apart
        run._latency_eval("movies", asked, 3, "128/8")
    assert sorted(p.name[len("latency-movies-eval-128-8"):] for p in run.OUT.glob("*-eval-128-8*.json")) == [
        "-2.json", "-3.json", ".json"]


def test_every_dependency_of_the_product_is_staged_or_said_why_not():
    stage = _script("gpu_stage")
    pyproject = tomllib.loads((SCRIPTS.parent / "pyproject.toml").read_text())
    names = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in pyproject["project"]["dependencies"]}
    staged = {w.lower() for w in stage.WHEELS}
    assert names - staged - set(stage.NOT_STAGED) == set()


def test_bring_packs_the_live_model_in_bfloat16_and_returns_it_over_several_calls(tmp_path, monkeypatch):
    import tarfile

    import torch
    from safetensors.torch import load_file, save_file

    run = _script("gpu_run")
    live = tmp_path / "h-movies" / "adapters" / "v0001"
    live.mkdir(parents=True)
    weights = {"w": torch.linspace(-1, 1, 3000, dtype=torch.float32), "n": torch.arange(5)}
    save_file(weights, live / "model.safetensors")
    (live / "config.json").write_text("{}")
    monkeypatch.setattr(run, "TMP", tmp_path)
    monkeypatch.setattr(run, "live_model_dir", lambda graph, base=run.BASE: live)
    monkeypatch.setattr(run, "BRING_CHUNK", 4096)
    monkeypatch.setattr(run, "BRING_PER_CALL", 2)
    calls = []
    for k in (1, 2, 3, 4, 5):
        out = tmp_path / f"out{k}"
        monkeypatch.setattr(run, "FINAL", out)
        run.phase_bring(f"movies:{k}")
        calls.append(sorted(p.name for p in out.glob("bring-movies.tar.*")) if out.is_dir() else [])
    chunks = [name for names in calls for name in names]
    assert all(len(names) <= 2 for names in calls) and calls[-1] == []  # 2 a call, then nothing is left
    assert chunks == sorted(set(chunks)) and len(chunks) >= 3
    joined = tmp_path / "back.tar"
    joined.write_bytes(b"".join((tmp_path / f"out{k}" / n).read_bytes()
                                for k, names in enumerate(calls, 1) for n in names))
    with tarfile.open(joined) as tar:
        tar.extractall(tmp_path / "back", filter="data")
    back = load_file(tmp_path / "back" / "v0001" / "model.safetensors")
    assert back["w"].dtype == torch.bfloat16 and torch.equal(back["w"], weights["w"].to(torch.bfloat16))
    assert torch.equal(back["n"], weights["n"])
    assert (tmp_path / "back" / "v0001" / "config.json").read_text() == "{}"
    assert load_file(live / "model.safetensors")["w"].dtype == torch.float32  # the home's model untouched


def test_results_are_mirrored_into_out_while_a_call_runs(tmp_path, monkeypatch):
    """A call stopped at its limit never writes its tarball: the results' JSON and logs are copied into
    $OUT/live as they change, large and other files left out."""
    run = _script("gpu_run")
    monkeypatch.setattr(run, "OUT", tmp_path / "results")
    monkeypatch.setattr(run, "FINAL", tmp_path / "out")
    run.OUT.mkdir()
    (run.OUT / "latency-movies.json").write_text('{"n": 1}')
    (run.OUT / "model.bin").write_bytes(b"x")
    (run.OUT / "big.log").write_bytes(b"x" * (run.MIRROR_MAX_BYTES + 1))
    seen = {}
    run.mirror_once(seen)
    live = run.FINAL / "live"
    assert sorted(p.name for p in live.iterdir()) == ["latency-movies.json"]
    (run.OUT / "latency-movies.json").write_text('{"n": 2}')
    os.utime(run.OUT / "latency-movies.json", (1, 1))  # a new modification time, whatever the clock says
    run.mirror_once(seen)
    assert json.loads((live / "latency-movies.json").read_text()) == {"n": 2}


def test_the_batch_probe_times_every_configuration_with_the_products_decoder(tmp_path, monkeypatch):
    """``batchprobe:G``'s script, run as the phase runs it, on the tiny model and a CPU: every configuration
    decodes its steps through ``BatchDecoder`` (no stop token) and is timed."""
    import subprocess

    from tests.agent_helpers import make_tiny_model_dir

    monkeypatch.setenv("GPU_RUN_TMP", str(tmp_path))
    run = _script("gpu_run")
    tiny = make_tiny_model_dir(tmp_path / "tiny", seed=5)
    dev, schema, out = tmp_path / "dev.jsonl", tmp_path / "schema.txt", tmp_path / "probe.json"
    dev.write_text("".join(json.dumps({"question": f"How many movies came out in {y}?"}) + "\n"
                           for y in (1999, 2003)))
    schema.write_text("CREATE (:Movie {title: 'The Matrix', released: 1999})")
    env = {**os.environ, "CYPHERLOOP_HOME": str(tmp_path / "home"), "CYPHERLOOP_BASE_MODEL": str(tiny),
           "CYPHERLOOP_ADAPTER": "none", "CYPHERLOOP_DEVICE": "cpu",
           "PYTHONPATH": str(SCRIPTS.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", run.BATCH_PROBE, str(dev), "3", "2", str(schema), str(out)],
                          env=env, capture_output=True, text=True, cwd=SCRIPTS.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    probe = json.loads(out.read_text())
    assert [(c["rows"], c["temperature"], c["top_p"]) for c in probe["configs"]] == [
        (1, 0.0, 1.0), (4, 0.7, 0.9), (2, 0.0, 1.0), (8, 0.0, 1.0), (8, 0.7, 1.0), (8, 0.7, 0.9),
        (8, 0.0, 1.0), (8, 0.7, 0.9), (8, 0.7, 0.9)]
    assert [c["attention"] for c in probe["configs"]][-3:-1] == ["sdpa", "sdpa"]  # transformers' own, again
    assert [c["top_p_prefilter"] for c in probe["configs"]] == [True] * 8 + [False]  # then the full sort
    # the tiny random model's rows are flat: every sampled row with top-p is chosen again with the sort
    assert [c["settled_rows"] > 0 for c in probe["configs"]] == [False, True] + [False] * 3 + [True, False,
                                                                                               True, False]
    # timed (a busy CPU's 3 steps can take less than the prefill measured apart: no sign is asserted)
    assert all(isinstance(c["step_ms"], float) and c["choose_error"] is None for c in probe["configs"])
