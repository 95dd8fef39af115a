"""The one way to build the agent from settings: ``cypherloop ask`` and ``eval``, the chat UI and the
promotion gate (and so the scheduler) all call ``make_agent``.

    with make_agent(settings, feedback_store=store) as agent:
        answer = agent.ask("How many customers are there?")

What is not given is built from the settings: the graph store (opened and its schema read, so a wrong
graph name fails at once with one clear line; closed with the agent) and the generator
(``settings.model_backend``).
"""

from __future__ import annotations

from agent.answer import AnswerWriter
from agent.core.feedback import AgentStore, ExampleSource
from agent.core.prompt import Example
from agent.core.settings import Settings
from agent.graph import CypherAgent
from agent.graphdb import GraphStore, open_graph
from agent.models.base import CypherGenerator
from agent.models.factory import make_escalation_generator, make_generator


def open_graph_checked(settings: Settings, name: str | None = None) -> GraphStore:
    """Open the graph and read its schema now, so a wrong name fails with one clear line."""
    store = open_graph(settings, name)
    try:
        store.schema()
    except BaseException:
        store.close()
        raise
    return store


def make_agent(
    settings: Settings,
    *,
    graph_store: GraphStore | None = None,
    generator: CypherGenerator | None = None,
    feedback_store: AgentStore | None = None,
    example_pool: ExampleSource | None = None,
    examples: list[Example] | None = None,
    answer_writer: AnswerWriter | None = None,
    escalation: CypherGenerator | None = None,
) -> CypherAgent:
    """A ``CypherAgent`` for ``settings.graph``; opens the graph and builds the generator when not given.

    ``feedback_store`` gives few-shot retrieval and the interaction log (None: neither); ``example_pool``
    adds the graph's bootstrap pool to retrieval (``feedback_store.pool.ExamplePool.for_settings``);
    ``examples`` fixes the few-shot examples instead (benchmarks); ``escalation`` is the larger model for
    low-confidence questions (default: ``settings.escalate_model``, None when unset). A graph store opened
    here is closed with the agent. To load a local model ahead, build it first and start
    ``agent.models.factory.load_ahead`` on it (a cold ``ask`` does, before it imports this module).
    """
    own = graph_store is None
    store = open_graph_checked(settings) if graph_store is None else graph_store
    try:
        model = generator if generator is not None else make_generator(settings)
        bigger = escalation if escalation is not None else make_escalation_generator(settings)
    except BaseException:
        if own:
            store.close()
        raise
    return CypherAgent(settings, store, model, feedback_store, examples=examples, answer_writer=answer_writer,
                       example_pool=example_pool, owns_graph_store=own, escalation=bigger)


__all__ = ["make_agent", "open_graph_checked"]
