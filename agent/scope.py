"""Is this input a question the agent should answer from the graph? (pure, rule-based)

Refused without touching the database or the model: empty input, greetings and small talk,
requests to change data (the agent is read-only), and prompt injection ("ignore previous
instructions", "drop the graph"). Questions *about* changes ("Which orders were created in May?")
stay in scope: only imperative requests to modify are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REFUSAL_EMPTY = (
    'Please ask a question about the data in the graph, for example "How many customers are there?"'
)
REFUSAL_GREETING = (
    "Hello! I answer questions about the data in this graph. Ask me something like "
    "\"How many customers are there?\" or \"Which products are in the Books category?\""
)
REFUSAL_WRITE = (
    "I can only read the graph, not change it, so I can't add, update or delete data. "
    "I'm happy to answer a question about what is in it."
)
REFUSAL_INJECTION = (
    "I can't do that. I only answer questions about the data in the graph, read-only. "
    "Please ask a question about the data."
)

_GREETING_WORDS = (
    r"hi|hello|hey|hiya|howdy|yo|greetings|good\s+(?:morning|afternoon|evening|night|day)|thanks|thank\s+you|thx|"
    r"cheers|bye|goodbye|see\s+you|ok|okay|cool|great|nice|how\s+are\s+you(?:\s+doing)?|what'?s\s+up|sup|"
    r"who\s+are\s+you|what\s+are\s+you|what\s+can\s+you\s+do|help|test(?:ing)?|ping|please|there|you|bot|assistant"
)
GREETING = re.compile(rf"^(?:\W*(?:{_GREETING_WORDS})\b)+\W*$", re.IGNORECASE)

# Imperative requests that change data: at the start, after a polite lead-in, or as raw write Cypher.
_LEAD = (
    r"^\s*(?:(?:please|pls|kindly|now|then|and|also|ok(?:ay)?|hey|hi)[\s,]+)*"
    r"(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?|i\s+(?:want|need|would\s+like)\s+(?:you\s+)?to\s+"
    r"|let'?s\s+|go\s+ahead\s+and\s+|try\s+to\s+)?"
)
_WRITE_VERBS = (
    r"delete|remove|drop|create(?!\s+(?:a|an|me\s+a)\s+(?:list|table|summary|report|overview|chart|breakdown))|insert|update|change|modify|edit|set|rename|merge|erase|wipe|clear|truncate|"
    r"destroy|reset|replace|overwrite|add(?!\s+up\b)|put|write|store|save|purge|detach|increase|decrease|raise|lower|"
    r"mark|assign|attach|link|connect|disconnect|unlink"
)
WRITE_REQUEST = re.compile(rf"{_LEAD}(?:{_WRITE_VERBS})\b(?!\s*:)", re.IGNORECASE)
WRITE_CYPHER = re.compile(
    r"\b(?:CREATE|MERGE|DELETE|DETACH\s+DELETE|REMOVE|DROP|LOAD\s+CSV|FOREACH)\b[\s(:]|\bSET\s+\w+\s*[.:=+]",
)
INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass|skip)\b[^.?!]{0,40}\b(?:instructions?|prompts?|rules?|guidelines|system|constraints?|restrictions?|above|previous|prior)\b"
    r"|\b(?:system\s+prompt|developer\s+mode|jailbreak|DAN\s+mode|you\s+are\s+now\b|act\s+as\s+(?:an?\s+)?(?:admin|root|dba|database\s+administrator)|pretend\s+(?:to\s+be|you\s+are))"
    r"|\b(?:drop|delete|wipe|destroy|erase|truncate|clear|empty)\s+(?:the\s+|all\s+(?:the\s+)?|your\s+|this\s+|every\s+)?(?:entire\s+|whole\s+)?(?:graph|database|db|data|tables?|nodes|everything)\b"
    r"|\breveal\b[^.?!]{0,30}\b(?:prompt|instructions|password|secret|key)s?\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ScopeDecision:
    """``in_scope`` False comes with the polite reply to show instead of an answer."""

    in_scope: bool
    reason: str = ""  # "", "empty", "greeting", "write_request", "injection"
    reply: str = ""


IN_SCOPE = ScopeDecision(True)


def check_scope(question: str | None) -> ScopeDecision:
    """Decide whether to answer ``question`` from the graph."""
    text = (question or "").strip()
    if not text or not re.search(r"[^\W_]", text):
        return ScopeDecision(False, "empty", REFUSAL_EMPTY)
    if INJECTION.search(text):
        return ScopeDecision(False, "injection", REFUSAL_INJECTION)
    if WRITE_CYPHER.search(text) or any(WRITE_REQUEST.match(s) for s in _sentences(text)):
        return ScopeDecision(False, "write_request", REFUSAL_WRITE)
    if GREETING.match(text):
        return ScopeDecision(False, "greeting", REFUSAL_GREETING)
    return IN_SCOPE


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?;])\s+|\n+", text) if s.strip()]
