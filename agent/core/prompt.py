"""The one prompt format, shared by training and serving.

Training data (``finetune.dataset``) and the serving generators both call ``build_messages``; the
assistant turn is the Cypher alone. Changing anything here changes what every adapter was
trained on: bump ``PROMPT_VERSION`` so the registry can tell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PROMPT_VERSION = "2"
"""2: a cut list of sample values in the schema text ends with "… N more" (agent.graphdb.base)."""

SYSTEM_PROMPT = (
    "You write Cypher queries for a graph database. Use only the node labels, relationship types, "
    "directions and properties in the schema. Answer with one read-only Cypher query and nothing else.\n"
    "Schema:\n{schema}"
)
EXAMPLES_HEADER = "\nExamples:"
CORRECTION_PROMPT = (
    "{question}\n\nThis query failed:\n{cypher}\nError: {error}\nWrite a corrected query."
)


@dataclass(frozen=True)
class Example:
    """A verified question → Cypher pair used as a few-shot example."""

    question: str
    cypher: str


@dataclass(frozen=True)
class ErrorFeedback:
    """A failed attempt handed back to the model: the query and the database's (or checker's) message."""

    cypher: str
    error: str


def build_messages(
    question: str,
    schema_text: str,
    examples: Sequence[Example] = (),
    error_feedback: ErrorFeedback | None = None,
) -> list[dict[str, str]]:
    """Chat messages (system, user) for one question; the model's reply is the Cypher."""
    system = SYSTEM_PROMPT.format(schema=schema_text.strip())
    if examples:
        system += EXAMPLES_HEADER + "".join(
            f"\nQuestion: {e.question.strip()}\nCypher: {e.cypher.strip()}" for e in examples
        )
    user = question.strip()
    if error_feedback is not None:
        user = CORRECTION_PROMPT.format(
            question=user, cypher=error_feedback.cypher.strip(), error=error_feedback.error.strip()
        )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def training_record(
    question: str,
    cypher: str,
    schema_text: str,
    examples: Sequence[Example] = (),
    error_feedback: ErrorFeedback | None = None,
) -> dict[str, Any]:
    """A conversational prompt/completion record as trl's SFTTrainer expects it (loss on the completion
    only)."""
    return {
        "prompt": build_messages(question, schema_text, examples, error_feedback),
        "completion": [{"role": "assistant", "content": cypher.strip()}],
    }


def prompt_token_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Token ids the serving path feeds the model: the chat template with the generation prompt."""
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):  # transformers 5 may return a BatchEncoding
        ids = ids["input_ids"]
    return list(ids)
