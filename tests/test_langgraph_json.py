"""``langgraph.json``: the LangGraph CLI accepts it, and the graph it names loads and answers (issue 16 #9).

LangGraph Studio / ``langgraph dev`` load ``./agent/graph.py:graph`` by file path, as done here; the graph
takes its parts (graph store, generator, feedback store) as its run context, ``AgentContext``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "langgraph.json"


def test_the_langgraph_cli_accepts_the_config():
    config = pytest.importorskip("langgraph_cli.config")
    validated = config.validate_config_file(CONFIG)
    assert validated["graphs"] == {"cypherloop": "./agent/graph.py:graph"}


def test_the_named_graph_loads_by_path_and_answers(shop, settings, monkeypatch):
    from agent.models.base import ScriptedGenerator
    from agent.state import InputState

    [(name, target)] = json.loads(CONFIG.read_text())["graphs"].items()
    path, attribute = target.split(":")
    spec = importlib.util.spec_from_file_location(f"langgraph_{name}", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # as the LangGraph server registers it
    spec.loader.exec_module(module)
    graph = getattr(module, attribute)
    assert {"retrieve", "generate", "validate", "execute", "answer"} <= set(graph.get_graph().nodes)
    context = module.AgentContext.from_settings(
        settings, shop, ScriptedGenerator({"*": "MATCH (c:Customer) RETURN count(c) AS customers"})
    )
    out = graph.invoke(InputState(question="How many customers are there?"), context=context)
    assert out["status"] == "ok" and out["rows"] == [[shop.stats()["nodes"]["Customer"]]]
