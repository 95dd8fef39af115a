"""The graph factory that ``langgraph.json`` names, for LangGraph Studio and ``langgraph dev``.

    langgraph dev            # in the repository root, with the cypherloop venv active

The LangGraph server loads ``./ui/studio.py:make_graph`` by file path and calls it for each run (and for
the graph's schema). The compiled graph in ``agent.graph`` takes its graph store, model and feedback store
as its run context (``AgentContext``), which the server does not pass; ``make_graph`` builds that context
from the user's settings, as ``cypherloop ask`` does (``CYPHERLOOP_HOME``, ``CYPHERLOOP_GRAPH``, the model
settings, ``.env``), and binds it to the graph. Both are built once per settings and kept: the server
calls the factory for every run and every schema request, and the model loads on the first question only.

The factory is a coroutine and builds the agent in a worker thread: the server calls it on its event loop,
where ``langgraph dev`` refuses blocking calls (opening the database and the store create folders and
files). The graph's nodes are synchronous; the server runs them in its thread pool.

It lives on the top floor because it opens the feedback store (retrieval), which the agent never imports.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from agent.core.env import quiet_libraries
from agent.core.settings import Settings, load_settings
from agent.factory import make_agent
from agent.graph import CypherAgent, build_graph
from feedback_store.chroma import ChromaFeedbackStore
from feedback_store.pool import ExamplePool

_agents: dict[str, CypherAgent] = {}
_graphs: dict[str, Any] = {}
_lock = threading.Lock()


def _key(settings: Settings) -> str:
    return settings.model_dump_json()


def agent_for(settings: Settings) -> CypherAgent:
    """The agent for ``settings`` (graph opened, model and feedback store ready), built once and kept."""
    with _lock:
        key = _key(settings)
        if key not in _agents:
            _agents[key] = make_agent(settings, feedback_store=ChromaFeedbackStore(settings),
                                      example_pool=ExamplePool.for_settings(settings))
        return _agents[key]


def _graph_from_settings() -> Any:
    quiet_libraries()
    settings = load_settings()
    agent = agent_for(settings)
    key = _key(settings)
    with _lock:
        if key not in _graphs:
            _graphs[key] = build_graph(context=agent.context)
        return _graphs[key]


async def make_graph(config: Any = None) -> Any:
    """The agent's compiled graph with its context bound, from the settings in the environment.

    ``config`` is the run's ``RunnableConfig`` (what the LangGraph server hands a factory); nothing in it
    is read: cypherloop is configured by its own settings.
    """
    return await asyncio.to_thread(_graph_from_settings)


__all__ = ["agent_for", "make_graph"]
