"""Plots for docs/BENCHMARKS.md from the raw results in docs/benchmarks/ (PNG next to them).

    .venv/bin/python scripts/bench_plots.py
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "docs" / "benchmarks"


def _loss(path: Path) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    train, ev = [], []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        if "loss" in r:
            train.append((r["step"], r["loss"]))
        if "eval_loss" in r:
            ev.append((r["step"], r["eval_loss"]))
    return train, ev


def main() -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gpu = BENCH / "gpu"
    # 1. the shipped adapter's loss curve
    train, ev = _loss(gpu / "general-loss.jsonl")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(*zip(*train, strict=True), label="train loss")
    if ev:
        ax.plot(*zip(*ev, strict=True), "o-", label="eval loss")
    ax.set(
        xlabel="optimizer step", ylabel="loss", title="general-v1 (shipped adapter), SmolLM2-135M, one H200"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(BENCH / "loss-general-v1.png", dpi=120)

    # 2. speed a/b: same data, same steps
    speed = json.loads((gpu / "speed.json").read_text())
    fig, ax = plt.subplots(figsize=(7, 4))
    for name in ("seeds-qlora", "fast-gpu"):
        tr, _ = _loss(gpu / f"speed-{name}-loss.jsonl")
        run = speed["runs"][name]
        ax.plot(
            *zip(*tr, strict=True),
            marker=".",
            label=f"{name}: {run['tokens_per_second']:,.0f} tok/s, eval loss {run['eval_loss']:.3f}",
        )
    ax.set(
        xlabel="optimizer step (effective batch 16)",
        ylabel="train loss",
        title=f"seeds' QLoRA vs fast-gpu, same data and steps ({speed['ratio_tokens_per_second']}x tokens/s)",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(BENCH / "loss-speed-ab.png", dpi=120)

    # 3. the feedback loop: held-out accuracy per round
    loop_file = gpu / "loop.json" if (gpu / "loop.json").is_file() else gpu / "loop-partial.json"
    data = json.loads(loop_file.read_text())
    rounds = data["rounds"] if isinstance(data, dict) else data
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    xs = [r["round"] for r in rounds]
    for g, colour in (("movies", "tab:blue"), ("northwind", "tab:orange")):
        if all("heldout_retrieval" in r for r in rounds):
            ax.plot(xs, [100 * r["heldout_retrieval"][g]["accuracy"] for r in rounds], "o-", color=colour,
                    label=f"{g}: adapter + retrieved corrections (as served)")
        ax.plot(
            xs,
            [100 * r["heldout"][g]["accuracy"] for r in rounds],
            "x--",
            color=colour,
            label=f"{g}: adapter alone",
        )
        ax2.plot(
            xs,
            [100 * r["heldout"][g]["executable"] for r in rounds],
            "x--",
            color=colour,
            label=f"{g}: adapter alone",
        )
        if all("heldout_retrieval" in r for r in rounds):
            ax2.plot(xs, [100 * r["heldout_retrieval"][g]["executable"] for r in rounds], "o-", color=colour,
                     label=f"{g}: + retrieval")
    ax.set(xlabel="feedback round (0 = synthetic data only)", ylabel="% of held-out questions correct",
           xticks=xs, title="Held-out execution accuracy per round")
    ax2.set(xlabel="feedback round", ylabel="% of held-out queries that run", ylim=(0, 100), xticks=xs,
            title="Held-out queries that execute")
    ax.legend(fontsize=7)
    ax2.legend(fontsize=7)
    fig.suptitle("Feedback loop on the dev graphs (SmolLM2-135M, H200)")
    fig.tight_layout()
    fig.savefig(BENCH / "loop-accuracy.png", dpi=120)
    print("wrote", *sorted(p.name for p in BENCH.glob("*.png")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
