"""Dev benchmark: question -> answer latency through the real agent, with the latency trace (never a test).

    .venv/bin/python scripts/bench_latency.py [--n 30] [--backends ctranslate2,transformers] [--adapters
    shipped,none] [--temperature 0]
    .venv/bin/python scripts/bench_latency.py --graph movies --dataset ../shared/bench/dev/movies.jsonl \\
        --graph-file ../shared/bench/graphs/movies.cypher --n 100 --backends ctranslate2,transformers \\
        --temperature 0
    .venv/bin/python scripts/bench_latency.py --adapters shipped-unmerged,shipped --temperature 0  # merge A/B
    .venv/bin/python scripts/bench_latency.py --backends transformers,ctranslate2:float32,ctranslate2:int8 \
        --temperature 0  # CTranslate2 compute types against transformers

Each configuration (backend × adapter) gets a warm agent built by ``agent.factory.make_agent`` (the
product's path: the generator ``make_generator`` builds, the graph's schema, the checks, read-only runs and up
to ``max_attempts`` repair rounds), warmed up at load as the product's long-lived processes are
(``CypherAgent.warm_up``: on CUDA the static decoding step compiled, its calls in ``model_warmup``), then
``--warmup`` questions not counted, then ``--n`` questions one at a time (single stream). Configurations
that differ only in ``candidates`` share one generator (one model, one compilation).
Per question it records the agent's per-node timings (check_scope, retrieve, generate,
validate, execute, correct, answer …), the graph's own overhead (total minus the nodes), and the generator's
``GenerationTrace`` of every model call: prompt tokens (and those served from a prefix cache), generated
tokens, tokenizer time, prefill (time to the first token), time per decoding step, host-side time outside
the model's steps. ``--profile K`` (CUDA only) runs K more questions under ``torch.profiler`` and reports the
GPU's kernel time against the wall time of the generate node: the host-side share on a GPU.

``--out`` is rewritten (atomically) after every question, so a run that is stopped keeps what it measured;
``--budget-s S`` stops asking after S seconds of timed questions. Per question it also records the tokens
generated in all (a batch: each row's length in its trace, ``row_tokens``), the time in model calls and the
time outside them. ``--static-probe reduce-overhead,default`` (after the configurations; transformers)
tries the static KV cache with transformers' compiled decoding step per ``torch.compile`` mode and records
where it fails, with the traceback (``static_probe`` in the JSON).

Questions: offline-generated demo questions (fixed seed; anyone can re-run it without ../shared), or the
first ``--warmup + --n`` of a JSONL set (``--dataset``, e.g. a dev set) on ``--graph`` (loaded from
``--graph-file`` into the scratch home when it is missing). With several backends, each question's first
reply, final query and status are compared with the first backend's (greedy ``--temperature 0`` for
equal-answer checks). Writes ``--out`` (default ``bench-output/latency.json``) with every question's record.

A backend may name the CTranslate2 weights after a colon (``ctranslate2:float32``,
``ctranslate2:int8_float32``; the setting ``ct2_quantization`` otherwise) and override settings after a
``+`` (``ctranslate2:float32+ct2_threads=0``, ``ctranslate2+ct2_prefix_cache=false``: before/after in one
run). The load average
(``os.getloadavg``) is recorded before and after each configuration: the machine may be shared.

``shipped`` is the adapter shipped for the default base (``agent/data/adapters/general-v1``), ``active`` the
home's live one, ``none`` the bare base, anything else a folder; ``shipped-unmerged`` serves the shipped
adapter without folding it into the weights (transformers backend), for an A/B at equal outputs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from agent.core.files import atomic_write_text  # noqa: E402

OUT = ROOT / "bench-output"
GOLD: dict[str, str] = {}
"""question → gold query, when the question set has them (then each answer is also scored: ``correct``)."""
TRACE_FIELDS = ("prompt_tokens", "cached_prompt_tokens", "new_tokens", "tokenize_ms", "prefill_ms",
                "decode_ms", "step_ms", "host_ms", "total_ms")


def _draft_summary(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """Exact drafting over all model calls (``llamacpp_draft``): tokens drafted, accepted, and new tokens per
    forward pass of the decoding (1.0 without drafting)."""
    drafted = sum(c.get("draft_tokens", 0) for c in calls)
    if not drafted:
        return {}
    accepted = sum(c.get("draft_accepted", 0) for c in calls)
    new = sum(c["new_tokens"] for c in calls)
    return {"draft_tokens": drafted, "draft_accepted": accepted,
            "draft_acceptance": round(accepted / drafted, 3),
            "new_tokens_per_decoding_pass": round(new / max(1, new - accepted), 3)}


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _cudagraph_skips() -> int | None:
    """How many compiled graphs torch ran without CUDA graphs so far in this process (inductor's counter;
    its "skipping cudagraphs due to …" message is off by default), None before torch is imported."""
    if "torch" not in sys.modules:
        return None
    from torch._dynamo.utils import counters

    return int(counters["inductor"].get("cudagraph_skips", 0))


def _questions(args: argparse.Namespace, store: Any) -> list[str]:
    want = args.warmup + args.n
    if args.dataset:
        from agent.evaluation import load_dataset

        items = load_dataset(args.dataset, require_id=False)[:want]
        GOLD.update({item.question: item.cypher for item in items if item.cypher})
        return [item.question for item in items]
    from finetune.synth import generate_pairs

    pairs, _ = generate_pairs(store, want, seed=11)
    return [p.question for p in pairs]


def _adapter_setting(name: str, base_model: str) -> str:
    from agent.core.adapters import shipped_adapter

    if name.startswith("shipped"):
        ref = shipped_adapter(base_model)
        if ref is None:
            raise SystemExit(f"no adapter is shipped for {base_model}")
        return str(ref.path)
    return name


def _setting_overrides(items: list[str]) -> dict[str, Any]:
    """``["ct2_threads=2", "ct2_prefix_cache=false"]`` → settings values, validated by each field's type."""
    from pydantic import TypeAdapter, ValidationError

    from agent.core.settings import Settings

    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        field = Settings.model_fields.get(key)
        if field is None:
            raise SystemExit(f"bench_latency: no setting {key!r} (in '+{item}')")
        try:
            out[key] = TypeAdapter(field.annotation).validate_python(value)
        except ValidationError as e:
            raise SystemExit(f"bench_latency: bad value for {key}: {e.errors()[0]['msg']}") from None
    return out


def _profile(agent: Any, questions: list[str]) -> dict[str, Any]:
    """GPU kernel time against wall time for a few questions (torch.profiler; CUDA only)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device"}
    out = []
    for q in questions:
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            t0 = time.perf_counter()
            r = agent.ask(q)
            wall = (time.perf_counter() - t0) * 1000
        kernel_us = 0.0
        launches = 0
        for e in prof.events():
            if str(getattr(e, "device_type", "")).endswith("CUDA"):
                kernel_us += getattr(e, "device_time", 0.0) or getattr(e, "cuda_time", 0.0) or 0.0
                launches += 1
        out.append({"question": q, "wall_ms": round(wall, 1), "generate_ms": r.timings.get("generate"),
                    "gpu_kernel_ms": round(kernel_us / 1000, 1), "kernels": launches})
    return {"questions": out}


def _gold_rows(store: Any, cypher: str) -> list[Any] | None:
    """The gold query's rows (None when it fails: that question is not scored)."""
    try:
        return store.query(cypher, timeout_s=30.0).rows
    except Exception:  # noqa: BLE001 - a broken gold query scores nothing
        return None


class Config:
    """One backend × adapter: a warm agent built by the product's path, and the questions it was asked."""

    def __init__(self, args: argparse.Namespace, base: Any, store: Any, label: str,
                 questions: list[str], warmup: int | None = None,
                 generators: dict[str, Any] | None = None) -> None:
        from agent.factory import make_agent
        from agent.models.factory import make_generator

        self.label = label
        backend_spec, adapter = label.split("/", 1)
        backend_spec, *extra = backend_spec.split("+")
        backend, _, quantization = backend_spec.partition(":")
        upd: dict[str, Any] = {"model_backend": backend,
                               "adapter": _adapter_setting(adapter, base.base_model)}
        if quantization:
            upd["ct2_quantization"] = quantization
        upd.update(_setting_overrides(extra))
        if args.temperature is not None:
            upd["temperature"] = args.temperature
        self.settings = s = base.model_copy(update=upd)
        self.backend, self.adapter = backend, adapter
        self.load_before = os.getloadavg()
        t0 = time.perf_counter()
        # configurations differing only in the agent's settings (candidates) share one generator: one model
        # in memory, and its compiled decoding step (CUDA) compiled once
        key = f"{adapter}|{s.model_dump_json(exclude={'candidates'})}"
        shared = generators.get(key) if generators is not None else None
        self.generator = shared if shared is not None else make_generator(s)
        if generators is not None:
            generators[key] = self.generator
        if adapter == "shipped-unmerged":
            self.generator._merge = lambda: None  # keep the LoRA layers separate
        self.agent = make_agent(s, graph_store=store, generator=self.generator)
        before = len(getattr(self.generator, "warmup_calls", ()))
        t1 = time.perf_counter()
        self.agent.warm_up()  # as the product's long-lived processes do at load (the static step on CUDA)
        self.model_warmup = {"s": round(time.perf_counter() - t1, 1), "shared_generator": shared is not None,
                             "calls": list(getattr(self.generator, "warmup_calls", ()))[before:]}
        for q in questions[: args.warmup if warmup is None else warmup]:
            self.agent.ask(q)
        self.warm_s = round(time.perf_counter() - t0, 1)
        self.records: list[dict[str, Any]] = []

    def ask(self, q: str, gold_rows: list[Any] | None = None) -> None:
        from agent.core.cypher_text import same_result

        traces = getattr(self.generator, "traces", None)
        if traces is not None:
            traces.clear()
        load = os.getloadavg()[0]
        t = time.perf_counter()
        r = self.agent.ask(q)
        wall = (time.perf_counter() - t) * 1000
        nodes = {k: v for k, v in r.timings.items() if k != "total"}
        calls = [tr.to_dict() for tr in traces] if traces is not None else []
        model_ms = sum(c["total_ms"] for c in calls)
        self.records.append({
            "question": q,
            "latency_ms": round(wall, 3),
            "load_1min": round(load, 2),
            "status": r.status,
            "attempts": len(r.attempts),
            "first_reply": r.attempts[0]["raw"] if r.attempts else "",
            "cypher": r.cypher,
            "rows": len(r.rows),
            "correct": None if gold_rows is None else bool(r.ran and same_result(gold_rows, r.rows)),
            "timings": r.timings,
            "graph_overhead_ms": round(r.timings.get("total", wall) - sum(nodes.values()), 3),
            "new_tokens": sum(c["new_tokens"] for c in calls),
            "model_ms": round(model_ms, 3),
            "outside_model_ms": round(wall - model_ms, 3),
            "model_calls": calls,
        })
        print(f"{self.label} {len(self.records)}: {wall:.0f} ms {r.status} "
              f"{[c['new_tokens'] for c in self.records[-1]['model_calls']]} tokens "
              f"{json.dumps({k: round(v) for k, v in nodes.items()})} (load {load:.1f})",
              flush=True)

    def report(self, args: argparse.Namespace, questions: list[str], profile: bool = True) -> dict[str, Any]:
        summary = self.summary()
        if args.profile and profile:
            summary["profile"] = _profile(self.agent, questions[: args.profile])
        print(f"{self.label}: {json.dumps(summary)}", flush=True)
        return {"summary": summary, "questions": self.records}

    def summary(self) -> dict[str, Any]:
        from agent.evaluation import percentile

        s, records = self.settings, self.records
        if not records:
            return {"model_version": self.generator.version, "n": 0, "load_and_warmup_s": self.warm_s,
                    "model_warmup": self.model_warmup}
        lat = [x["latency_ms"] for x in records]
        one = [x["latency_ms"] for x in records if x["attempts"] <= 1]
        calls = [c for x in records for c in x["model_calls"]]
        firsts = [x["model_calls"][0] for x in records if x["model_calls"]]
        nodes: dict[str, list[float]] = {}
        for x in records:
            for k, v in x["timings"].items():
                nodes.setdefault(k, []).append(v)
        statuses: dict[str, int] = {}
        for x in records:
            statuses[x["status"]] = statuses.get(x["status"], 0) + 1
        summary = {
            "model_version": self.generator.version,
            "settings": {"model_backend": self.backend, "adapter": self.adapter, "temperature": s.temperature,
                         "max_new_tokens": s.max_new_tokens, "max_attempts": s.max_attempts,
                         "device": s.device, "ct2_quantization": s.ct2_quantization,
                         "ct2_threads": s.ct2_threads, "ct2_prefix_cache": s.ct2_prefix_cache,
                         "llamacpp_threads": s.llamacpp_threads, "llamacpp_weights": s.llamacpp_weights,
                         "llamacpp_draft": s.llamacpp_draft, "llamacpp_draft_ngram": s.llamacpp_draft_ngram,
                         "llamacpp_draft_max": s.llamacpp_draft_max,
                         "llamacpp_draft_min": s.llamacpp_draft_min,
                         "candidates": s.resolved_candidates(), "generation_cache": s.generation_cache,
                         "prompt_lookup_tokens": s.prompt_lookup_tokens,
                         "generation_compile_mode": s.generation_compile_mode,
                         "candidates_one_call": s.candidates_one_call, "decode_loop": s.decode_loop},
            "load_and_warmup_s": self.warm_s,
            "model_warmup": self.model_warmup,
            "static_cache_used": bool(getattr(self.generator, "_warmed", False)
                                      and not getattr(self.generator, "static_cache_error", None)),
            "cudagraph_skips_in_process": _cudagraph_skips(),
            "load_average_before": [round(x, 2) for x in self.load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "load_1min_median": _median([x["load_1min"] for x in records]),
            "n": len(lat),
            "p50_ms": round(percentile(lat, 50), 1),
            "p95_ms": round(percentile(lat, 95), 1),
            "mean_ms": round(statistics.mean(lat), 1),
            "one_attempt_n": len(one),
            "one_attempt_p50_ms": round(percentile(one, 50), 1) if one else None,
            "statuses": statuses,
            "executable": sum(x["status"] in ("ok", "no_data") for x in records),
            "correct": sum(bool(x["correct"]) for x in records),
            "node_median_ms": {k: _median(v) for k, v in nodes.items()},
            "node_p95_ms": {k: round(percentile(v, 95), 3) for k, v in nodes.items()},
            "graph_overhead_median_ms": _median([x["graph_overhead_ms"] for x in records]),
            "model_calls": len(calls),
            "model_calls_per_question_mean": round(len(calls) / max(1, len(records)), 2),
            "first_call_median": {f: _median([c[f] for c in firsts]) for f in TRACE_FIELDS},
            "all_calls_median": {f: _median([c[f] for c in calls]) for f in TRACE_FIELDS},
            "all_calls_max_new_tokens": max((c["new_tokens"] for c in calls), default=0),
            **_draft_summary(calls),
            "question_new_tokens_median": _median([x["new_tokens"] for x in records]),
            "question_model_ms_median": _median([x["model_ms"] for x in records]),
            "question_outside_model_ms_median": _median([x["outside_model_ms"] for x in records]),
            "question_outside_model_ms_p95": round(
                percentile([x["outside_model_ms"] for x in records], 95), 3),
        }
        static_error = getattr(self.generator, "static_cache_error", None)
        if static_error:
            summary["static_cache_error"] = static_error
        graphed_error = getattr(self.generator, "graphed_error", None)
        if graphed_error:
            summary["graphed_error"] = graphed_error
        return summary


def run_configs(args: argparse.Namespace, base: Any, store: Any, labels: list[str],
                questions: list[str],
                save: Callable[[dict[str, Any]], None] = lambda _: None) -> dict[str, Any]:
    """Every configuration over the questions: one after the other, or with ``--interleave`` each question
    asked of every configuration in turn (the order rotating), so that on a shared machine all of them see the
    same load. ``save(results)`` after every question (the report so far: a run stopped early keeps it);
    ``--budget-s`` stops asking new questions once that many seconds of questions have passed."""
    results: dict[str, Any] = {}
    timed = questions[args.warmup:]
    gold = {q: _gold_rows(store, GOLD[q]) for q in timed if q in GOLD}
    configs: list[Config] = []
    generators: dict[str, Any] = {}
    clock: list[float] = []  # the budget runs from the first timed question (after the loads and warm-ups)

    def build(label: str) -> Config | None:
        try:
            c = Config(args, base, store, label, questions, generators=generators)
        except Exception as e:  # noqa: BLE001 - report the configuration as unavailable
            results[label] = {"error": f"{type(e).__name__}: {e}"}
            print(f"{label}: unavailable ({e})", flush=True)
            save(results)
            return None
        results[label] = {"summary": c.summary(), "questions": c.records}
        print(f"{label}: loaded and warmed up in {c.warm_s} s", flush=True)
        save(results)
        return c

    def over() -> bool:
        return bool(args.budget_s and clock and time.perf_counter() - clock[0] > args.budget_s)

    def ask(c: Config, q: str) -> None:
        clock[:] = clock or [time.perf_counter()]
        c.ask(q, gold.get(q))
        for done in configs:
            results[done.label] = {"summary": done.summary(), "questions": done.records}
        save(results)

    if args.interleave:  # the budget is checked between questions: every configuration gets the same ones
        configs = [c for c in map(build, labels) if c is not None]
        for i, q in enumerate(timed):
            if over():
                break
            for k in range(len(configs)):
                ask(configs[(i + k) % len(configs)], q)
    else:
        for label in labels:
            c = build(label)
            if c is not None:
                configs.append(c)
                for q in timed:
                    if over():
                        break
                    ask(c, q)
    if over():
        print(f"--budget-s {args.budget_s:g} reached: {[len(c.records) for c in configs]} questions asked",
              flush=True)
    if args.thread_check and configs and timed:
        results["thread_check"] = thread_check(configs[0], timed[0], gold.get(timed[0]))
        save(results)
    for i, c in enumerate(configs):  # --profile: the first configuration only
        results[c.label] = c.report(args, questions, profile=i == 0)
        save(results)
    return {label: results[label] for label in [*labels, "thread_check"] if label in results}


def thread_check(c: Config, q: str, gold_rows: list[Any] | None) -> dict[str, Any]:
    """``q`` asked of ``c`` once more from another thread (after the timed questions, not counted): ``serve``
    and the UI answer from threads, and a compiled step's CUDA graphs keep per-thread state. A failure of the
    static cache there shows as its traceback (the generator serves dynamic from then on)."""
    import threading

    failed_before = bool(getattr(c.generator, "static_cache_error", None))
    worker = threading.Thread(target=c.ask, args=(q, gold_rows), name="thread-check")
    worker.start()
    worker.join()
    record = c.records.pop()
    error = None if failed_before else getattr(c.generator, "static_cache_error", None)
    print(f"thread check ({c.label}): {record['latency_ms']:.0f} ms {record['status']}"
          f"{', static cache failed' if error else ''}", flush=True)
    return {"config": c.label, "question": q, "latency_ms": record["latency_ms"], "status": record["status"],
            "static_cache_error": error, "model_calls": record["model_calls"]}


def static_probe(args: argparse.Namespace, base: Any, store: Any, adapter: str, questions: list[str],
                 save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Does the static KV cache with transformers' compiled decoding step work here, and what does it cost?

    For each ``torch.compile`` mode of ``--static-probe`` (transformers' default is ``reduce-overhead``:
    CUDA graphs): a fresh agent on ``generation_cache=static``, one candidate, asks the warm-up questions
    (different prompt lengths: the first compiles), then one more in another thread (``serve`` and the chat
    answer from threads; CUDA graph trees keep per-thread state); the first call that fails records its
    traceback and ends the mode (the generator has gone back to the dynamic cache). A mode whose calls all
    worked then asks the timed questions (``--static-n``, within ``--static-budget-s``), as a configuration
    of its own, and ends the probe (later modes are tried only after a failure)."""
    import threading

    import torch
    from transformers import CompileConfig

    out: dict[str, Any] = {"torch": torch.__version__, "modes": {}}
    started = time.perf_counter()
    for mode in args.static_probe.split(","):
        if time.perf_counter() - started > args.static_budget_s:
            out["modes"][mode] = {"skipped": f"--static-budget-s {args.static_budget_s:g} spent"}
            continue
        label = f"transformers+generation_cache=static+candidates=1/{adapter}"
        record: dict[str, Any] = {"calls": []}
        out["modes"][mode] = record
        try:
            c = Config(args, base, store, label, questions, warmup=0)
            c.generator.model.generation_config.compile_config = CompileConfig(mode=mode)
        except Exception as e:  # noqa: BLE001 - the probe reports, the report stands
            record["error"] = f"{type(e).__name__}: {e}"
            save({"static_probe": out})
            continue
        c.label = f"{label} ({mode})"
        probe = questions[: max(1, args.warmup)] + questions[args.warmup: args.warmup + 1]
        for i, q in enumerate(probe):
            in_thread = i == len(probe) - 1 and len(probe) > 1
            c.generator.traces.clear()
            call: dict[str, Any] = {"question": q, "thread": "other" if in_thread else "main",
                                    "running": True}  # a run stopped during this call (compiling) says so
            record["calls"].append(call)
            save({"static_probe": out})
            t = time.perf_counter()
            if in_thread:
                worker = threading.Thread(target=c.agent.ask, args=(q,), name="static-probe")
                worker.start()
                worker.join()
            else:
                c.agent.ask(q)
            call.pop("running")
            call.update(wall_ms=round((time.perf_counter() - t) * 1000, 1),
                        model_calls=[tr.to_dict() for tr in c.generator.traces])
            if c.generator.static_cache_error:
                call["error"] = c.generator.static_cache_error
                record["failed_at_call"] = i + 1
                print(f"static probe ({mode}): call {i + 1} failed:\n{c.generator.static_cache_error}",
                      flush=True)
                break
            print(f"static probe ({mode}): call {i + 1} ok, {call['wall_ms']:.0f} ms, "
                  f"{[x['step_ms'] for x in call['model_calls']]} ms a step", flush=True)
            save({"static_probe": out})
        save({"static_probe": out})
        if "failed_at_call" in record:
            continue  # the next mode, to tell the compiler's fault from the CUDA graphs'
        record["works"] = True
        deadline = started + args.static_budget_s
        for q in questions[args.warmup: args.warmup + (args.static_n or args.n)]:
            if time.perf_counter() > deadline:
                break
            c.ask(q, None)
            record["summary"] = c.summary()
            record["questions"] = c.records
            save({"static_probe": out})
        break  # one working mode answers the question; the rest would only spend the lease
    out["seconds"] = round(time.perf_counter() - started, 1)
    save({"static_probe": out})
    return out


def agreement(reference: list[dict[str, Any]], other: list[dict[str, Any]]) -> dict[str, Any]:
    """How often another configuration answered exactly as the reference did, question by question."""
    pairs = list(zip(reference, other, strict=False))
    n = len(pairs)

    def share(key: str) -> float:
        return round(sum(a[key] == b[key] for a, b in pairs) / max(1, n), 4)

    return {"n": n, "same_first_reply": share("first_reply"), "same_final_cypher": share("cypher"),
            "same_status": share("status"),
            "differing_first_replies": [{"question": a["question"], "reference": a["first_reply"],
                                         "other": b["first_reply"]}
                                        for a, b in pairs if a["first_reply"] != b["first_reply"]]}


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench_latency")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--backends", default="ctranslate2,transformers")
    ap.add_argument("--adapters", default="shipped", help="comma-separated: shipped, active, none, a folder")
    ap.add_argument("--home", type=Path, default=Path("/tmp/cl-bench-latency"))
    ap.add_argument("--graph", default="demo")
    ap.add_argument("--graph-file", type=Path, default=None,
                    help="Cypher script loaded when the graph is empty")
    ap.add_argument("--dataset", type=Path, default=None, help="JSONL question set (default: demo questions)")
    ap.add_argument("--device", default=None, help="torch device (default: the setting, auto)")
    ap.add_argument("--profile", type=int, default=0,
                    help="questions profiled on CUDA after the timed ones (the first configuration)")
    ap.add_argument("--budget-s", type=float, default=0,
                    help="stop asking new questions after this many seconds of them (0: no limit)")
    ap.add_argument("--static-probe", default="",
                    help="after the configurations, torch.compile modes to try the static KV cache with, "
                         "e.g. reduce-overhead,default (transformers backend, --adapters' first)")
    ap.add_argument("--static-n", type=int, default=0, help="timed questions of a working mode (0: --n)")
    ap.add_argument("--static-budget-s", type=float, default=120,
                    help="seconds for the whole static probe; a mode starts only within it")
    ap.add_argument("--out", type=Path, default=OUT / "latency.json")
    ap.add_argument("--reference", type=Path, default=None,
                    help="an earlier report: every configuration here is compared with its first one")
    ap.add_argument("--interleave", action="store_true",
                    help="ask each question of every configuration in turn (fair timings on a shared "
                         "machine)")
    ap.add_argument("--thread-check", action="store_true",
                    help="after the timed questions, ask the first once more from another thread (serve and "
                         "the UI answer from threads): thread_check in the results")
    ap.add_argument("--temperature", type=float, default=None,
                    help="default: the product's (0.1); 0 for equal outputs across configurations")
    args = ap.parse_args()
    from agent.core.env import library_defaults

    library_defaults()

    from agent.core.settings import load_settings
    from agent.demo import build_demo
    from agent.graphdb import open_graph
    from agent.graphdb.loader import load_script

    overrides: dict[str, Any] = {"home": args.home, "graph": args.graph}
    if args.device:
        overrides["device"] = args.device
    base_settings = load_settings(**overrides)
    store = open_graph(base_settings, args.graph)
    try:
        empty = not store.query("MATCH (n) RETURN count(n)").rows[0][0]
    except Exception:  # noqa: BLE001 - the graph does not exist yet
        empty = True
    if empty:
        if args.graph_file:
            load_script(store, args.graph_file, replace=True)
        elif args.graph == "demo":
            build_demo(store, replace=True)
        else:
            raise SystemExit(f"graph {args.graph!r} is empty in {args.home}; pass --graph-file")
    questions = _questions(args, store)
    labels = [f"{b}/{a}" for b in args.backends.split(",") for a in args.adapters.split(",")]
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = {"name": torch.cuda.get_device_name(0), "torch": torch.__version__}
    except ImportError:
        pass
    report: dict[str, Any] = {
        "command": " ".join(["scripts/bench_latency.py", *sys.argv[1:]]),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "gpu": gpu,
        "results": {},
        "agreement": {},
    }

    def save(update: dict[str, Any]) -> None:
        """The report so far, replaced atomically: a run killed at any point leaves what it measured."""
        report.update(update)
        report["load_average_at_end"] = os.getloadavg()
        atomic_write_text(args.out, json.dumps(report, indent=1, default=str), durable=False)

    results = run_configs(args, base_settings, store, labels, questions,
                          save=lambda partial: save({"results": partial}))
    keys = [k for k, v in results.items() if "questions" in v]
    compared = {}
    if args.reference:
        earlier = json.loads(args.reference.read_text())["results"]
        ref_key = next(k for k, v in earlier.items() if "questions" in v)
        for k in keys:
            compared[f"{k} vs {ref_key} ({args.reference.name})"] = agreement(earlier[ref_key]["questions"],
                                                                           results[k]["questions"])
    for k in keys[1:]:
        ref = next(r for r in keys if r.split("/")[1] == k.split("/")[1])
        if ref != k:
            compared[f"{k} vs {ref}"] = agreement(results[ref]["questions"], results[k]["questions"])
    for name, c in compared.items():
        brief = {x: y for x, y in c.items() if x != "differing_first_replies"}
        print(f"{name}: {json.dumps(brief)}", flush=True)
    save({"results": results, "agreement": compared})
    if args.static_probe:
        static_probe(args, base_settings, store, args.adapters.split(",")[0], questions, save)
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
