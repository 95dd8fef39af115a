"""Cypher generators: local transformers (+PEFT), llama.cpp, any OpenAI-compatible server, scripted."""

from agent.models.base import CypherGenerator, ScriptedGenerator

__all__ = ["CypherGenerator", "ScriptedGenerator"]
