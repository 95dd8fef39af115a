"""Graph access: the GraphStore protocol and its backends (embedded/external FalkorDB, Neo4j)."""

from __future__ import annotations

from agent.core.errors import ConfigError
from agent.core.settings import Settings
from agent.graphdb.base import GraphSchema, GraphStore, NodeLabel, Pattern, Property, QueryResult, RelType
from agent.graphdb.embedded import ensure_running
from agent.graphdb.falkor import FalkorGraph

__all__ = [
    "GraphSchema",
    "GraphStore",
    "NodeLabel",
    "Pattern",
    "Property",
    "QueryResult",
    "RelType",
    "open_graph",
]


def open_graph(settings: Settings, name: str | None = None) -> GraphStore:
    """The graph ``name`` (default ``settings.graph``) on the backend ``settings.graph_backend``.

    ``embedded`` starts the home's FalkorDB when it is not running; ``falkordb`` connects to
    ``settings.falkordb_url``; ``neo4j`` uses ``settings.neo4j_*``. The embedded store reconnects by
    itself: when the server is gone it re-reads the home's server state and restarts it. Opening does
    not check that the graph exists: reads raise ``UnknownGraph``, loader writes create it.
    """
    name = name or settings.graph
    common = {
        "default_timeout_s": settings.query_timeout_s,
        "default_max_rows": settings.max_rows,
        "schema_max_chars": settings.schema_max_chars,
        "limits": settings.query_limits(),
        "write_timeout_s": settings.db_write_timeout_s,
    }
    if settings.graph_backend == "embedded":
        info = ensure_running(settings)

        def reconnect() -> tuple[str, int, str]:
            """Where the home's server listens now; restarted (on its old port when free) if it died."""
            again = ensure_running(settings)
            return again.host, again.port, again.password

        return FalkorGraph(name, host=info.host, port=info.port, password=info.password, backend="embedded",
                           reconnect=reconnect, **common)
    if settings.graph_backend == "falkordb":
        if not settings.falkordb_url:
            raise ConfigError(
                "graph_backend is falkordb but CYPHERLOOP_FALKORDB_URL is not set (e.g. redis://:password@host:6379)"
            )
        return FalkorGraph(name, url=settings.falkordb_url, backend="falkordb", **common)
    if settings.graph_backend == "neo4j":
        from agent.graphdb.neo4j import Neo4jGraph  # defers the neo4j driver to Neo4j users

        return Neo4jGraph.from_settings(settings, name=name)
    raise ConfigError(
        f"unknown CYPHERLOOP_GRAPH_BACKEND {settings.graph_backend!r}; choose embedded, falkordb or neo4j"
    )
