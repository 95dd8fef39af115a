"""``langgraph.json``: the LangGraph CLI accepts it, and the graph factory it names builds the agent with its
context from the user's settings and answers (issue 16 #9).

LangGraph Studio / ``langgraph dev`` load ``./ui/studio.py:make_graph`` by file path and await it on the
server's event loop with the run's config (where ``langgraph dev`` refuses blocking calls: the factory
builds the agent in a worker thread); the server passes ``{}`` as the run's context, not an
``AgentContext``, so the factory binds one built from the settings in the environment (``CYPHERLOOP_HOME``,
``CYPHERLOOP_GRAPH``). Done here the same way; a real ``langgraph dev`` run is in README ("LangGraph").
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import threading
from pathlib import Path

import pytest

from agent.models.base import ScriptedGenerator

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "langgraph.json"
COUNT = "MATCH (c:Customer) RETURN count(c) AS customers"


def test_the_langgraph_cli_accepts_the_config():
    config = pytest.importorskip("langgraph_cli.config")
    validated = config.validate_config_file(CONFIG)
    assert validated["graphs"] == {"cypherloop": "./ui/studio.py:make_graph"}


def _load_named_factory(monkeypatch):
    """The callable ``langgraph.json`` names, imported from its file as the LangGraph server does."""
    [(name, target)] = json.loads(CONFIG.read_text())["graphs"].items()
    path, attribute = target.split(":")
    spec = importlib.util.spec_from_file_location(f"langgraph_{name}", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # as the LangGraph server registers it
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "_agents", {})  # this test's settings, not an earlier test's agent
    monkeypatch.setattr(module, "_graphs", {})
    return module, getattr(module, attribute)


def test_the_named_factory_builds_the_graph_from_the_settings_and_answers(shop, cl_home, monkeypatch):
    from agent.state import InputState

    made, threads = [], []

    def scripted_generator(settings):
        made.append(settings)
        threads.append(threading.current_thread())
        return ScriptedGenerator({"*": COUNT})

    monkeypatch.setattr("agent.factory.make_generator", scripted_generator)  # no model load in this test
    monkeypatch.setenv("CYPHERLOOP_HOME", str(cl_home))
    monkeypatch.setenv("CYPHERLOOP_GRAPH", "shop")
    module, make_graph = _load_named_factory(monkeypatch)

    graph = asyncio.run(make_graph({"configurable": {}}))  # awaited with the run's config, as the server does
    assert threads and threads[0] is not threading.main_thread()  # built off the server's event loop
    assert {"retrieve", "generate", "validate", "execute", "answer"} <= set(graph.get_graph().nodes)
    question = InputState(question="How many customers are there?")
    for context in (None, {}):  # no context, and the server's empty one
        out = graph.invoke(question, context=context)
        assert out["status"] == "ok" and out["rows"] == [[shop.stats()["nodes"]["Customer"]]]
    assert [s.graph for s in made] == ["shop"] and made[0].home_dir == cl_home.resolve()
    # the next run (or a schema request) reuses the agent and the graph: nothing is built again
    assert asyncio.run(make_graph()) is graph and len(made) == 1
    for agent in module._agents.values():
        agent.close()


def test_a_run_that_brings_its_own_context_keeps_it(shop, settings, monkeypatch):
    from agent.graph import AgentContext, build_graph
    from agent.state import InputState

    bound = AgentContext.from_settings(settings, shop, ScriptedGenerator({"*": "RETURN 1 AS one"}))
    own = AgentContext.from_settings(settings, shop, ScriptedGenerator({"*": COUNT}))
    out = build_graph(context=bound).invoke(InputState(question="How many customers are there?"), context=own)
    assert out["rows"] == [[shop.stats()["nodes"]["Customer"]]]
