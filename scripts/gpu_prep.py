"""Stage the GPU campaign (docs/BENCHMARKS.md, issue 7): everything that needs no GPU is done here, on the CPU.

    .venv/bin/python scripts/gpu_prep.py [--out .gpu]

Loads the demo graph and the two dev graphs (``../shared/bench/graphs``) into the embedded FalkorDB of a
scratch home, generates offline pairs, builds the training sets through ``finetune.dataset`` and packs
what the GPU machine needs into three folders of at most 60 MiB each (the device tool carries 64 MiB a
call): ``.gpu/c1`` (a slice of the base model's GGUF), ``.gpu/c2`` (the next slice), ``.gpu/c3`` (the
rest of the GGUF, the FalkorDB and LangGraph wheels, the data). ``.whl`` (trl, bitsandbytes, ...) goes
with the first call. scripts/gpu_campaign.py runs there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

# What the campaign trains on (counts of offline pairs per graph; rows of the multi-schema CSVs).
OFFLINE_N = {"demo": 2500, "movies": 1500, "northwind": 1500}
GENERAL_EXTRA_ROWS = 4000


def main() -> int:
    ap = argparse.ArgumentParser(prog="gpu_prep")
    ap.add_argument("--out", type=Path, default=ROOT / ".gpu")
    ap.add_argument("--home", type=Path, default=Path("/tmp/cl-gpu-prep"))
    ap.add_argument("--small", action="store_true", help="tiny sizes, for a CPU dry run of the campaign")
    args = ap.parse_args()

    from finetune.synth_offline import generate_pairs, write_pairs

    from agent.demo import build_demo
    from agent.graphdb import open_graph
    from agent.graphdb.loader import load_script
    from agent.models.local import packaged_gguf
    from agent.settings import Settings
    from finetune.dataset import BuildSpec, build_dataset

    sizes = {k: (60 if args.small else v) for k, v in OFFLINE_N.items()}
    extra_rows = 200 if args.small else GENERAL_EXTRA_ROWS
    settings = Settings(home=args.home)
    data = args.out / "data"
    shutil.rmtree(data, ignore_errors=True)
    (data / "graphs").mkdir(parents=True)
    stores = {}
    for name in ("demo", "movies", "northwind"):
        store = open_graph(settings, name)
        if name == "demo":
            build_demo(store, replace=True)
        else:
            src = SHARED / "bench" / "graphs" / f"{name}.cypher"
            load_script(store, src, replace=True)
            shutil.copy(src, data / "graphs" / src.name)
            shutil.copy(SHARED / "bench" / "dev" / f"{name}.jsonl", data / f"dev_{name}.jsonl")
            _embed_questions(data / f"dev_{name}.jsonl", data / f"emb_{name}.json")
        stores[name] = store
        t0 = time.perf_counter()
        pairs, report = generate_pairs(store, sizes[name], seed=1)
        write_pairs(pairs, data / f"offline_{name}.jsonl")
        print(f"{name}: {len(pairs)} offline pairs in {time.perf_counter() - t0:.1f} s")

    # General adapter (the shipped default): multi-schema CSV rows + offline pairs of demo and northwind.
    # movies is left out entirely, so it measures a graph the adapter has never seen.
    general = data / "general"
    parts = []
    for name in ("demo", "northwind"):
        out = data / "build" / f"general_{name}"
        extra = [_sample_csv(data, extra_rows)] if name == "demo" else []
        spec = BuildSpec(graph=name, out_dir=out, offline=[data / f"offline_{name}.jsonl"], extra=extra,
                         extra_schemas=SHARED / "data" / "neo4jlabs_text2cypher" / "text2cypher_schemas.csv",
                         heldout_frac=0.15 if name == "demo" else 0.0, regression_frac=0.0, seed=0)
        summary = build_dataset(settings, spec, graph_store=stores[name])
        print(summary.table())
        parts.append(out)
    _concat([p / "train.jsonl" for p in parts], general / "train.jsonl", seed=0)
    shutil.copy(data / "build" / "general_demo" / "heldout.jsonl", data / "heldout_demo.jsonl")

    # Round 0 of the feedback loop: synthetic pairs of the two dev graphs only.
    syn = []
    for name in ("movies", "northwind"):
        out = data / "build" / f"syn_{name}"
        build_dataset(settings, BuildSpec(graph=name, out_dir=out, offline=[data / f"offline_{name}.jsonl"],
                                          heldout_frac=0.0, regression_frac=0.0, seed=0), graph_store=stores[name])
        syn.append(out / "train.jsonl")
    _concat(syn, data / "syn" / "train.jsonl", seed=0)
    shutil.rmtree(data / "build")

    # Pack: the data and wheels for call 3; the GGUF split over the calls.
    for c in ("c1", "c2", "c3"):
        shutil.rmtree(args.out / c, ignore_errors=True)
        (args.out / c).mkdir(parents=True)
    with tarfile.open(args.out / "c3" / "data.tar.gz", "w:gz") as tar:
        tar.add(data, arcname="data")
    for w in (args.out / "w2").glob("*.whl"):
        shutil.copy(w, args.out / "c3" / w.name)
    gguf = packaged_gguf("smollm2-135m-instruct")
    blob = Path(gguf).read_bytes()
    cut1, cut2 = 10 << 20, (10 + 61) << 20
    (args.out / "c1" / "gguf.part0").write_bytes(blob[:cut1])
    (args.out / "c2" / "gguf.part1").write_bytes(blob[cut1:cut2])
    (args.out / "c3" / "gguf.part2").write_bytes(blob[cut2:])
    meta = {"gguf_name": Path(gguf).name, "gguf_md5": hashlib.md5(blob).hexdigest(), "gguf_bytes": len(blob),
            "offline_n": sizes, "general_extra_rows": extra_rows, "made": time.strftime("%Y-%m-%d %H:%M:%S")}
    (args.out / "c3" / "prep.json").write_text(json.dumps(meta, indent=2))
    # Call 1 also runs the 7B-class throughput run: it needs a tokenizer and a slice of the data, no graph.
    from transformers import AutoTokenizer

    from agent.models.local import ensure_base_model

    AutoTokenizer.from_pretrained(str(ensure_base_model(settings))).save_pretrained(args.out / "c1" / "tokenizer")
    (args.out / "c1" / "b7data").mkdir()
    lines = (general / "train.jsonl").read_text().splitlines()[:600]
    (args.out / "c1" / "b7data" / "train.jsonl").write_text("\n".join(lines) + "\n")
    for c in ("c1", "c2", "c3"):
        size = sum(f.stat().st_size for f in (args.out / c).rglob("*") if f.is_file())
        print(f"{c}: {size / 2**20:.1f} MiB")
    return 0


def _embed_questions(src: Path, out: Path) -> None:
    """The feedback store's embedding of each dev question (for the loop's few-shot retrieval on the GPU)."""
    from feedback_store.chroma import _norm_question
    from feedback_store.embeddings import embed

    items = [json.loads(ln) for ln in src.read_text().splitlines() if ln.strip()]
    vecs = embed([_norm_question(it["question"]) for it in items])
    out.write_text(json.dumps({it["id"]: [round(x, 5) for x in v] for it, v in zip(items, vecs, strict=True)}))


def _sample_csv(data: Path, n: int) -> Path:
    """``n`` random rows (fixed seed) of the two multi-schema CSVs, so every database is represented."""
    import csv

    rows, fields = [], None
    for f in ("text2cypher_gpt4turbo.csv", "text2cypher_claudeopus.csv"):
        with open(SHARED / "data" / "neo4jlabs_text2cypher" / f, newline="") as fh:
            reader = csv.DictReader(fh)
            fields = fields or reader.fieldnames
            rows += [r for r in reader]
    random.Random(0).shuffle(rows)
    out = data / "extra_multischema.csv"
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows[:n])
    return out


def _concat(files: list[Path], out: Path, seed: int) -> None:
    lines = [ln for f in files for ln in f.read_text().splitlines() if ln.strip()]
    random.Random(seed).shuffle(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"{out}: {len(lines)} records")


if __name__ == "__main__":
    raise SystemExit(main())
