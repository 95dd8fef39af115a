"""Graph access: the GraphStore protocol and its backends (embedded/external FalkorDB, Neo4j)."""

from agent.graphdb.base import GraphSchema, GraphStore, NodeLabel, Pattern, Property, QueryResult, RelType

__all__ = ["GraphSchema", "GraphStore", "NodeLabel", "Pattern", "Property", "QueryResult", "RelType"]
