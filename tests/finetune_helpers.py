"""Test support for the training tests: a tiny random-init Llama with the SmolLM2 tokenizer, and tiny
datasets.

The model (2 layers, hidden 64, ~3 M parameters, almost all of it the 49k-token embedding) trains a step in
well under a second on 2 cores, so pipeline tests run the real trl/peft code in seconds. It is built once
per test session into pytest's base temp folder (a file lock makes concurrent builders wait).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from agent.core.prompt import training_record

SHOP_SCHEMA = (
    "Node labels and properties:\n"
    "(:Customer {customer_id: STRING, name: STRING, city: STRING, country: STRING, segment: STRING})\n"
    "(:Product {product_id: STRING, name: STRING, price: FLOAT, stock: INTEGER, rating: FLOAT})\n"
    "(:Order {order_id: STRING, date: STRING, status: STRING, total: FLOAT})\n"
    "Relationships:\n(:Customer)-[:PLACED]->(:Order)\n(:Order)-[:CONTAINS {quantity: INTEGER}]->(:Product)"
)


def tiny_model_dir(base_temp: Path) -> Path:
    """Build (once) and return a folder with a tiny random Llama + the SmolLM2 tokenizer and chat template."""
    out = Path(base_temp) / "tiny-llama"
    if (out / "config.json").is_file() and (out / "tokenizer.json").is_file():
        return out
    from filelock import FileLock

    with FileLock(str(out) + ".lock"):
        if (out / "config.json").is_file() and (out / "tokenizer.json").is_file():
            return out
        from agent_helpers import make_tiny_model_dir

        tmp = make_tiny_model_dir(out.with_name(out.name + f".tmp{os.getpid()}"), seed=0)
        os.replace(tmp, out)
    return out


def cypher_pairs(n: int, offset: int = 0) -> list[tuple[str, str]]:
    """Simple, learnable question → Cypher pairs over the shop schema."""
    cities = ["Paris", "Berlin", "Rome", "Oslo", "Lisbon", "Madrid"]
    shapes = [
        ("How many customers live in {c}?", "MATCH (c:Customer {{city: '{c}'}}) RETURN count(c)"),
        ("List the names of customers in {c}.", "MATCH (c:Customer {{city: '{c}'}}) RETURN c.name"),
        (
            "How many orders did customers from {c} place?",
            "MATCH (c:Customer {{city: '{c}'}})-[:PLACED]->(o:Order) RETURN count(o)",
        ),
    ]
    out = []
    for i in range(offset, offset + n):
        q, c = shapes[i % len(shapes)]
        city = cities[(i // len(shapes)) % len(cities)]
        out.append((q.format(c=city) + ("" if i < 18 else f" (variant {i})"), c.format(c=city)))
    return out


def write_dataset(folder: Path, n_train: int = 24, n_heldout: int = 6, graph: str = "shop") -> Path:
    """A dataset folder in finetune.dataset's format: train.jsonl, heldout.jsonl,
    feedback_regression.jsonl."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def line(i: int, q: str, c: str, source: str) -> str:
        rec = {
            "id": f"{source}-{i}",
            "question": q,
            "cypher": c,
            "graph": graph,
            "source": source,
            "category": "test",
        }
        rec.update(training_record(q, c, SHOP_SCHEMA))
        return json.dumps(rec)

    train = cypher_pairs(n_train)
    held = cypher_pairs(n_heldout, offset=n_train)
    (folder / "train.jsonl").write_text(
        "".join(line(i, q, c, "offline") + "\n" for i, (q, c) in enumerate(train))
    )
    (folder / "heldout.jsonl").write_text(
        "".join(line(i, q, c, "offline") + "\n" for i, (q, c) in enumerate(held))
    )
    (folder / "feedback_regression.jsonl").write_text("")
    (folder / "summary.json").write_text(
        json.dumps({"train": n_train, "heldout": n_heldout, "feedback_regression": 0})
    )
    return folder


WRONG_CYPHER = "MATCH (p:Product) RETURN p.name"
"""A query that runs on the shop graph and answers none of the datasets' questions."""


def scripted_gate(data: Path, good_for: str):
    """A gate generator maker (``retrain(generator_factory=…)``): the model whose folder path contains
    ``good_for`` answers every held-out question of the dataset ``data`` with its gold query, every other
    one (the bare base included) with ``WRONG_CYPHER``. A promotion in a test is then earned: the
    candidate really scores higher; with ``good_for`` matching no side both score 0 (a tie)."""
    from agent.core.files import read_jsonl
    from agent.models.base import ScriptedGenerator

    gold = {r["question"]: r["cypher"] for r in read_jsonl(Path(data) / "heldout.jsonl")}

    def make(settings, adapter):
        good = adapter is not None and good_for in str(adapter)
        script = {**gold, "*": WRONG_CYPHER} if good else {"*": WRONG_CYPHER}
        return lambda: ScriptedGenerator(script, version=str(adapter))

    return make
