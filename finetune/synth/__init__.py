"""Schema-grounded, compositional training data for text-to-Cypher, offline: no LLM, any graph.

    cypherloop data generate --graph northwind --n 50000 --out pairs.jsonl

- ``profile``  reads the schema, sampled nodes and sampled relationships, and gives every property a kind.
- ``grammar``  samples query structures by walking real paths (1–3 hops, filters, existence, a frame:
               list / props / count / aggregate / top / group / having / …) and compiles them to Cypher.
- ``render``   turns the same structure into English, with many surface forms per construct.
- ``run``      executes each query read-only, settles DISTINCT and tie-free cuts, keeps the ones with a
               stable, informative result, renders paraphrases and reports coverage per construct.
"""

from finetune.synth.grammar import FRAMES
from finetune.synth.profile import Profile, profile_graph
from finetune.synth.run import GenerationReport, Pair, generate_pairs, query_id, read_pairs, write_pairs

__all__ = [
    "FRAMES",
    "GenerationReport",
    "Pair",
    "Profile",
    "generate_pairs",
    "profile_graph",
    "query_id",
    "read_pairs",
    "write_pairs",
]
