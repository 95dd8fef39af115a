"""The agent: question → Cypher → checked → run read-only → repaired on error → answer (LangGraph).

    check_scope ─(refused)──────────────────────────────────────────────────────────────► END
        │
    retrieve → generate ─(n candidates)→ vote ─┐
                   │                            ▼
                   └──────────────────────► validate ─(ok)→ execute ─(ok)→ assess ─→ answer ──► END
                              ▲                 │ (error)      │ (error)     │ (low)   ▲
                              └──── correct ◄───┴──────────────┘             ▼         │
                                       └─(max_attempts reached, or a timeout)→ give_up → escalate ──┘
                                                                      └──────────┴─(no escalation)─► END

With ``candidates`` > 1 the first attempt samples several replies in one batched call (the greedy one
first); ``vote`` runs each read-only (the distinct queries at once, on a few threads) and keeps the reply
whose result most of them agree on (execution-checked candidates). ``assess`` turns the agreement and the
repair history into the answer's confidence (``confidence_of``); below ``confidence_threshold`` the answer
says so, and when an escalation model is configured (``CYPHERLOOP_ESCALATE_MODEL``, an OpenAI-compatible
server) ``escalate`` asks it with the same prompt and checks and runs its query the same way; when it runs,
its rows answer, and ``CypherAgent.log`` stores the pair as a pending example (a teacher in the loop,
reviewed like a correction). A question the small model gave up on goes there too.

Runtime dependencies and limits travel as the graph's context (``AgentContext``), so one compiled
graph serves every graph store, generator and setting. Transient database faults
(``GraphUnavailable``) are retried by the nodes' ``RetryPolicy``; the model's correction loop only
sees errors the model can fix (syntax, schema, refused writes, runtime errors). A query that runs past
its time limit ends the question: another attempt would cost the full limit again.

``CypherAgent`` wraps it for callers: ``ask`` returns an ``AgentAnswer``, ``stream`` yields step events for a
UI. Build one with ``agent.factory.make_agent``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, fields, replace
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, RetryPolicy

from agent.answer import AnswerWriter, write_answer
from agent.cleanup import clean_cypher
from agent.core.cypher_text import cypher_name, result_fingerprint
from agent.core.errors import (
    CypherloopError,
    GraphAuthError,
    GraphError,
    GraphUnavailable,
    ModelError,
    QueryTimeout,
    UnknownGraph,
    WriteRefused,
)
from agent.core.feedback import AgentStore, ExampleSource, ExampleWriter, Interaction, VerifiedExample
from agent.core.prompt import ErrorFeedback, Example
from agent.core.settings import Settings
from agent.few_shot import PARAPHRASE, select_examples
from agent.graphdb.base import GraphSchema, GraphStore, QueryResult
from agent.graphdb.readonly import check_read_only
from agent.models.base import CypherGenerator, Generation, PromptInput, Ready, tell_each
from agent.schema_check import check_cypher, ground_literals
from agent.scope import check_scope
from agent.state import AgentAnswer, Attempt, InputState, OutputState, State, VotedRun

log = logging.getLogger(__name__)

NO_CYPHER_ERROR = (
    "The reply contained no Cypher query. Answer with one read-only Cypher query only "
    "(for example starting with MATCH), without any explanation."
)
GIVE_UP_ANSWER = (
    "Sorry, I could not answer this question: after {n} attempt{s} no query worked. "
    "The last error was: {error}"
)
UNAVAILABLE_ANSWER = "Sorry, I could not answer this question because a service is unavailable: {error}"
LOW_CONFIDENCE_NOTE = "(Low confidence {confidence:.2f}: {doubts}. Please check the query.)"

SINGLE_CANDIDATE = 0.75
"""Confidence of a first-try answer from one sampled reply: no agreement to measure, so not 1."""
PER_CORRECTION = 0.5
"""Each correction round the query needed multiplies the confidence by this."""
PER_REPAIR = 0.8
"""Each automatic schema repair (a renamed label, a flipped arrow …) multiplies it by this."""
WHEN_EMPTY = 0.7
"""A query that matched nothing multiplies it by this (wrong filters look like this)."""

EXAMPLES_MAX_CHARS = 4000
"""Few-shot examples in one prompt, in characters (about 1,000 tokens of SmolLM2's tokenizer)."""
FEW_SHOT_CANDIDATES = 4
"""The store is asked for this many times ``few_shot_k`` examples above the floor; the selection rule
(``agent.few_shot``) keeps ``few_shot_k`` of them."""

# Faults the model cannot fix: they end the run with status "error" (GraphUnavailable after the retries).
INFRASTRUCTURE_ERRORS = (GraphUnavailable, GraphAuthError, UnknownGraph)
# Transient faults: retried by LangGraph with backoff, never shown to the model.
DB_RETRY = RetryPolicy(
    max_attempts=3, initial_interval=0.25, backoff_factor=2.0, max_interval=2.0, retry_on=GraphUnavailable
)


@dataclass(kw_only=True)
class AgentContext:
    """Run-scoped dependencies and limits (LangGraph context). Build with ``from_settings``."""

    graph_store: GraphStore
    """Where queries run (read-only)."""
    generator: CypherGenerator
    """The model that writes Cypher."""
    feedback_store: AgentStore | None = None
    """Optional feedback store: few-shot retrieval (``similar_examples``) and the interaction log."""
    graph_name: str = ""
    """Graph name used to scope few-shot retrieval; defaults to graph_store.name."""
    max_attempts: int = 3
    """Model calls per question (first try + corrections)."""
    few_shot_k: int = 3
    """Examples retrieved per question (0 disables retrieval)."""
    few_shot_min_similarity: float = 0.8
    """Retrieved examples less similar to the question than this (cosine) are dropped."""
    schema_max_chars: int = 6000
    """Schema text longer than this is pruned to the question."""
    query_timeout_s: float = 10.0
    """Time limit for each model-written query."""
    max_rows: int = 1000
    """Row cap for each model-written query."""
    answer_writer: AnswerWriter | None = None
    """Optional model-written answer sentence (off by default)."""
    examples_override: list[Example] | None = None
    """Fixed few-shot examples instead of the store (benchmarks); None uses the store."""
    example_pool: ExampleSource | None = None
    """The graph's bootstrap pool (``feedback_store.pool.ExamplePool``) for few-shot retrieval; None: off."""
    pool_k: int = 0
    """Examples retrieved from the bootstrap pool per question (after the store's verified examples)."""
    candidates: int = 1
    """Replies sampled for the first attempt; more than one turns on execution-checked voting."""
    candidate_temperature: float = 0.7
    """Sampling temperature of the extra candidates (the first is greedy)."""
    max_question_chars: int = 2000
    """Longer questions are refused before anything runs."""
    max_query_chars: int = 4000
    """Longer replies are refused before the gate, the schema check or the database read them."""
    examples_max_chars: int = EXAMPLES_MAX_CHARS
    """Budget of the few-shot examples in the prompt (characters, about a third as many tokens)."""
    confidence_threshold: float = 0.0
    """Answers below this confidence say so and go to ``escalation`` when there is one; 0: never."""
    escalation: CypherGenerator | None = None
    """The larger model low-confidence questions go to (``CYPHERLOOP_ESCALATE_MODEL``); None: none."""
    reuse_vote_run: bool = True
    """The vote's check and run of the chosen reply stand: ``validate`` takes its check (``_vote_check``) and
    ``execute`` answers from its run (``_voted_result``) instead of checking and running it again; False:
    always check and run it again."""

    @classmethod
    def from_settings(cls, settings: Settings, graph_store: GraphStore, generator: CypherGenerator,
                      feedback_store: AgentStore | None = None, **extra: Any) -> AgentContext:
        return cls(
            graph_store=graph_store,
            generator=generator,
            feedback_store=feedback_store,
            graph_name=getattr(graph_store, "name", "") or settings.graph,
            max_attempts=settings.max_attempts,
            few_shot_k=settings.few_shot_k,
            few_shot_min_similarity=settings.few_shot_min_similarity,
            schema_max_chars=settings.schema_max_chars,
            query_timeout_s=settings.query_timeout_s,
            max_rows=settings.max_rows,
            pool_k=settings.pool_k,
            candidates=settings.resolved_candidates(),
            candidate_temperature=settings.candidate_temperature,
            max_question_chars=settings.max_question_chars,
            max_query_chars=settings.max_query_chars,
            confidence_threshold=settings.confidence_threshold,
            **extra,
        )


# --- helpers ------------------------------------------------------------------------------------
def _emit(runtime: Runtime[AgentContext], step: str, **data: Any) -> None:
    """A step event for ``stream`` (a no-op when nobody streams)."""
    writer = getattr(runtime, "stream_writer", None)
    if writer is not None:
        writer({"step": step, "label": data.pop("label", step), **data})


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


def _attempt(state: State, stage: Literal["validate", "execute"], cypher: str, error: str | None,
             fixes: list[str] | None = None, row_count: int | None = None) -> Attempt:
    return Attempt(attempt=state.loop_step, cypher=cypher, raw=state.raw, error=error, stage=stage,
                   fixes=fixes or [], row_count=row_count)


def _failure(state: State, stage: Literal["validate", "execute"], error: str, cypher: str,
             fixes: list[str] | None = None) -> dict[str, Any]:
    return {"error": error, "cypher": cypher, "attempts": [_attempt(state, stage, cypher, error, fixes)]}


def _db_message(e: GraphError) -> str:
    return (getattr(e, "db_message", None) or str(e)).strip()


def confidence_of(
    agreement: float | None, model_calls: int, repairs: int, empty: bool
) -> tuple[float, list[str]]:
    """The confidence of an answered question, 0..1, and the doubts behind it in words.

    The candidates' agreement (``SINGLE_CANDIDATE`` with one reply) discounted by the repair history: the
    correction rounds the query needed, the automatic schema repairs, and an empty result."""
    doubts = []
    value = SINGLE_CANDIDATE if agreement is None else agreement
    if agreement is not None and agreement < 1:
        doubts.append(f"{agreement:.0%} of the candidates agreed")
    if model_calls > 1:
        value *= PER_CORRECTION ** (model_calls - 1)
        doubts.append(f"the query needed {model_calls - 1} correction{'s' if model_calls > 2 else ''}")
    if repairs:
        value *= PER_REPAIR ** repairs
        doubts.append("the schema check had to repair it")
    if empty:
        value *= WHEN_EMPTY
        doubts.append("it matched nothing")
    return round(value, 3), doubts


def _cleaned(raw: str, ctx: AgentContext) -> tuple[str, str | None]:
    """The reply's query, cleaned, or why it is refused unread (too long, none in it): ``(cypher, error)``.
    Where ``_checked`` starts; the vote groups its candidates by it."""
    if len(raw) > 4 * ctx.max_query_chars:  # cleaning and checking a huge reply cost seconds
        return raw[:200], (f"The reply is {len(raw)} characters long; write one short query (at most "
                           f"{ctx.max_query_chars} characters).")
    cypher = clean_cypher(raw)
    if not cypher:
        return "", NO_CYPHER_ERROR
    if len(cypher) > ctx.max_query_chars:
        return cypher[:200], (f"The query is {len(cypher)} characters long, the limit is "
                              f"{ctx.max_query_chars}; write a shorter one.")
    return cypher, None


def _checked(raw: str, ctx: AgentContext, explain: bool = True) -> tuple[str, str | None, list[str]]:
    """Clean a reply; static read-only gate; schema check (with repairs); grounding; EXPLAIN. ``(cypher,
    error, fixes)``, error None when the query may run. ``explain=False`` leaves the EXPLAIN to a run that
    follows at once: a query that runs needs none, and one that cannot fails the run with the database's
    message."""
    cypher, error = _cleaned(raw, ctx)
    if error is not None:
        return cypher, error, []
    return _checked_cypher(cypher, ctx, explain)


def _checked_cypher(
    cypher: str, ctx: AgentContext, explain: bool = True
) -> tuple[str, str | None, list[str]]:
    """``_checked`` from the cleaned query on (the vote cleans every candidate first, to group them)."""
    try:
        check_read_only(cypher)
    except WriteRefused as e:
        return cypher, f"{str(e).rstrip('.')}. Write a query that only reads (MATCH … RETURN).", []
    checked = check_cypher(cypher, ctx.graph_store.schema())
    if not checked.ok:
        return cypher, checked.message(), checked.fixes
    checked.cypher, grounded = grounded_literals(checked.cypher, ctx.graph_store, ctx.query_timeout_s)
    checked.fixes += grounded
    if not explain:
        return checked.cypher, None, checked.fixes
    try:
        ctx.graph_store.explain(checked.cypher)
    except INFRASTRUCTURE_ERRORS:
        raise  # GraphUnavailable is retried by the node's RetryPolicy
    except GraphError as e:
        return checked.cypher, _db_message(e), checked.fixes
    return checked.cypher, None, checked.fixes


GROUNDING_VALUES = 10_000
"""A property with more distinct values than this is not searched for the value a literal stands for."""


def grounded_literals(cypher: str, store: GraphStore, timeout_s: float) -> tuple[str, list[str]]:
    """``schema_check.ground_literals`` with the database answering whether a label holds a value, and
    listing a property's values (one query per literal that no node holds, only then)."""

    def holds(label: str, prop: str, value: str | float) -> bool:
        try:
            probe = f"MATCH (n:{cypher_name(label)}) WHERE n.{cypher_name(prop)} = $v RETURN 1 LIMIT 1"
            rows = store.query(probe, {"v": value}, timeout_s=timeout_s, max_rows=1).rows
        except INFRASTRUCTURE_ERRORS:
            raise
        except GraphError:
            return True  # not answerable: leave the query as it is
        return bool(rows)

    def values(label: str, prop: str) -> list[str] | None:
        try:
            probe = (f"MATCH (n:{cypher_name(label)}) WHERE n.{cypher_name(prop)} IS NOT NULL "
                     f"RETURN DISTINCT n.{cypher_name(prop)}")
            res = store.query(probe, timeout_s=timeout_s, max_rows=GROUNDING_VALUES)
        except INFRASTRUCTURE_ERRORS:
            raise
        except GraphError:
            return None
        return None if res.truncated else [row[0] for row in res.rows]

    return ground_literals(cypher, store.schema(), holds, values)


def _run(cypher: str, ctx: AgentContext) -> tuple[QueryResult | None, str | None, bool]:
    """Run a checked query read-only with the timeout and row cap: ``(result, None, False)`` or ``(None,
    error, timed out)``."""
    try:
        res = ctx.graph_store.query(cypher, timeout_s=ctx.query_timeout_s, max_rows=ctx.max_rows)
        return res, None, False
    except INFRASTRUCTURE_ERRORS:
        raise  # GraphUnavailable is retried by the node's RetryPolicy
    except GraphError as e:
        message = _db_message(e)
        if isinstance(e, QueryTimeout):
            message += (f" (time limit {ctx.query_timeout_s:g} s: write a simpler, more selective query, "
                        "e.g. with LIMIT)")
        return None, message, isinstance(e, QueryTimeout)


# --- nodes ----------------------------------------------------------------------------------------
def check_scope_node(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Refuse empty input, small talk, write requests and prompt injection before anything runs."""
    start = time.perf_counter()
    limit = runtime.context.max_question_chars
    if len(state.question) > limit:
        reply = f"Sorry, that question is too long ({len(state.question)} characters; the limit is {limit})."
        _emit(runtime, "refused", reason="too_long")
        return {"scope": "too_long", "status": "refused", "answer": reply,
                "timings": {"check_scope": _ms(start)}}
    decision = check_scope(state.question)
    if decision.in_scope:
        return {"timings": {"check_scope": _ms(start)}}
    _emit(runtime, "refused", reason=decision.reason)
    return {
        "scope": decision.reason,
        "status": "refused",
        "answer": decision.reply,
        "timings": {"check_scope": _ms(start)},
    }


def retrieve(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Schema text pruned to the question, and similar verified examples from the feedback store."""
    start = time.perf_counter()
    ctx = runtime.context
    _emit(runtime, "retrieving")
    schema = ctx.graph_store.schema()
    examples: list[Example] = []
    if ctx.examples_override is not None:
        examples = list(ctx.examples_override)[: ctx.few_shot_k] if ctx.few_shot_k else []
    elif ctx.feedback_store is not None and ctx.few_shot_k > 0:
        try:
            examples = store_examples(ctx, state.question, schema)
        except Exception as e:  # noqa: BLE001 - few-shot is an aid; answer without it
            log.warning("few-shot retrieval failed, answering without examples: %s", e)
    if ctx.examples_override is None and ctx.example_pool is not None and ctx.pool_k > 0:
        try:
            seen = {e.question.strip().lower() for e in examples}
            found = ctx.example_pool.similar_examples(state.question, ctx.graph_name or ctx.graph_store.name,
                                                      k=ctx.pool_k)
            examples += [e for e in found if e.question.strip().lower() not in seen]
        except Exception as e:  # noqa: BLE001 - few-shot is an aid; answer without it
            log.warning("bootstrap-pool retrieval failed, answering without its examples: %s", e)
    return {
        "schema_text": schema.to_text(state.question, ctx.schema_max_chars),
        "schema_fingerprint": schema.fingerprint(),
        "examples": within_budget(examples, ctx.examples_max_chars),
        "timings": {"retrieve": _ms(start)},
    }


def store_examples(ctx: AgentContext, question: str, schema: GraphSchema) -> list[Example]:
    """The feedback store's examples shown for ``question``: its ``FEW_SHOT_CANDIDATES`` × k most similar
    above the floor, kept by ``agent.few_shot.select_examples`` (the live schema fits, the literals and the
    named properties are the question's; two of them, or one paraphrase) up to ``few_shot_k``. The store is
    asked a second time, above ``PARAPHRASE``, only when exactly one example passes."""
    if ctx.feedback_store is None or ctx.few_shot_k <= 0:
        return []
    store, graph = ctx.feedback_store, ctx.graph_name or ctx.graph_store.name
    n = ctx.few_shot_k * FEW_SHOT_CANDIDATES
    found = store.similar_examples(question, graph, k=n, min_similarity=ctx.few_shot_min_similarity)

    def is_paraphrase(example: Example) -> bool:
        near = max(PARAPHRASE, ctx.few_shot_min_similarity)
        return example in store.similar_examples(question, graph, k=n, min_similarity=near)

    return select_examples(question, [e for e in found if e.cypher], schema, ctx.few_shot_k, is_paraphrase)


def within_budget(examples: list[Example], max_chars: int) -> list[Example]:
    """The examples, in order, while their text fits ``max_chars`` (one that alone is larger is skipped):
    a 10 MB stored question can never become the prompt."""
    kept, used = [], 0
    for e in examples:
        size = len(e.question) + len(e.cypher)
        if used + size <= max_chars:
            kept.append(e)
            used += size
    return kept


def first_replies(
    generator: CypherGenerator, prompts: list[PromptInput], ctx: AgentContext, on_ready: Ready | None = None
) -> list[list[Generation]]:
    """The first attempt's replies for each prompt: one, or ``ctx.candidates`` (greedy first, then
    sampled; from one call when the generator offers it, ``candidates_one_call``). ``on_ready(index,
    replies)`` is told of every prompt once, with the replies returned for it (``generate_batch``'s): while
    the call still writes the others where the backend decodes prompts together (the transformers backend's
    graphed batches), else when it has them; with two calls, as the sampled one has each."""
    if ctx.candidates <= 1 and len(prompts) == 1:
        p = prompts[0]
        reply = generator.generate(p.question, p.schema_text, p.examples, None) or ""
        return tell_each([[Generation(reply)]], on_ready)
    if ctx.candidates <= 1:
        return generator.generate_batch(prompts, n=1, on_ready=on_ready)
    if getattr(generator, "one_call_candidates", lambda: False)():  # the transformers backend, when set
        return generator.generate_batch(prompts, n=ctx.candidates,  # type: ignore[call-arg]
                                        temperature=ctx.candidate_temperature, greedy_first=True,
                                        on_ready=on_ready)
    greedy = generator.generate_batch(prompts, n=1, temperature=0.0)
    with_greedy = None if on_ready is None else lambda i, rest: on_ready(i, greedy[i] + rest)
    sampled = generator.generate_batch(prompts, n=ctx.candidates - 1, temperature=ctx.candidate_temperature,
                                       on_ready=with_greedy)
    return [g + s for g, s in zip(greedy, sampled, strict=True)]


def generate(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """First attempt: the model writes a query (or several candidates) from the question, schema and
    examples."""
    start = time.perf_counter()
    ctx = runtime.context
    gen = ctx.generator
    _emit(runtime, "generating", attempt=state.loop_step + 1)
    if state.draft:
        replies = list(state.draft)
    else:
        replies = first_replies(gen, [PromptInput(state.question, state.schema_text, state.examples)], ctx)[0]
    update: dict[str, Any] = {"raw": replies[0].text or "", "loop_step": 1, "model_version": gen.version,
                              "timings": {"generate": _ms(start)}}
    if len(replies) > 1:
        update["candidates"] = replies
    return update


VOTE_WORKERS = 8
"""Threads that check and run the vote's distinct candidates at once, shared by the process's questions (the
eval asks several at once; the embedded FalkorDB runs ``db_query_threads``, 8 by default, at once)."""
_vote_pool: ThreadPoolExecutor | None = None
_vote_pool_lock = threading.Lock()


def _vote_executor() -> ThreadPoolExecutor:
    """The vote's thread pool: one per process, made by the first vote with two distinct candidates (its
    threads start as work comes)."""
    global _vote_pool  # noqa: PLW0603 - one pool per process, made lazily
    with _vote_pool_lock:
        if _vote_pool is None:
            _vote_pool = ThreadPoolExecutor(VOTE_WORKERS, thread_name_prefix="cypherloop-vote")
        return _vote_pool


def vote(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Check and run every distinct candidate read-only; keep the reply whose (non-empty) result most
    candidates agree on.

    Each distinct query is checked as validate checks a reply (``_checked``, the EXPLAIN left to the run) and
    run, all of them at once on the vote's threads (``_vote_runs``): their database round trips overlap.
    Ties go to the group holding the greedy reply, then to the higher summed log-probability. Candidates that
    fail the checks or the database take no part; when none returns rows the greedy reply stands. The chosen
    reply's check and result, when its query ran, are kept (``voted_run``) for validate and execute.
    """
    start = time.perf_counter()
    ctx = runtime.context
    _emit(runtime, "voting", candidates=len(state.candidates))
    cleaned = [_cleaned(c.text, ctx) for c in state.candidates]
    sources = [cypher if error is None else None for cypher, error in cleaned]  # None: refused unread
    distinct = list(dict.fromkeys(s for s in sources if s is not None))
    runs = dict(zip(distinct, _vote_runs(distinct, ctx), strict=True))
    keys: dict[str, Any] = {}
    for source, (_, _, res) in runs.items():
        if res is not None and res.rows:  # an empty result votes for nothing
            keys[source] = result_fingerprint(res.rows)
    groups: dict[Any, list[int]] = {}
    for i, source in enumerate(sources):
        if source in keys:
            groups.setdefault(keys[source], []).append(i)
    chosen, agreement = 0, 0.0
    if groups:
        def rank(members: list[int]) -> tuple[int, int, float]:
            logprob = max((state.candidates[i].logprob or float("-inf")) for i in members)
            return (len(members), int(0 in members), logprob)

        best = max(groups.values(), key=rank)
        chosen = 0 if 0 in best else max(best, key=lambda i: state.candidates[i].logprob or float("-inf"))
        agreement = round(len(best) / len(state.candidates), 3)
    source, kept = sources[chosen], None
    if ctx.reuse_vote_run and source is not None:
        kept = _voted_run(state.loop_step, source, *runs[source], ctx)
    return {
        "raw": state.candidates[chosen].text or "",
        "agreement": agreement,
        "voted_run": kept,
        "timings": {"vote": _ms(start)},
    }


CandidateRun = tuple[str, list[str], QueryResult | None]
"""A distinct candidate in the vote: the text it ran (or was refused as), its repairs, its result or None."""


def _vote_runs(sources: list[str], ctx: AgentContext) -> list[CandidateRun]:
    """``_vote_run`` of each cleaned query, in order; with two or more, at once on the vote's threads. The
    database errors the vote does not absorb (``INFRASTRUCTURE_ERRORS``) are raised as one at a time would
    raise them, the first in ``sources``' order, once every run has ended."""
    if len(sources) <= 1:
        return [_vote_run(s, ctx) for s in sources]
    pool = _vote_executor()
    futures = [pool.submit(_vote_run, s, ctx) for s in sources]
    wait(futures)
    return [f.result() for f in futures]


def _vote_run(source: str, ctx: AgentContext) -> CandidateRun:
    """One cleaned candidate checked as validate checks it, without the EXPLAIN (``_checked``), then run
    read-only with the timeout and row cap; a refusal or a failed run (a GraphError) leaves no result."""
    cypher, error, fixes = _checked_cypher(source, ctx, explain=False)
    if error is not None:
        return cypher, fixes, None
    res, _, _ = _run(cypher, ctx)
    return cypher, fixes, res


def _voted_run(attempt: int, source: str, cypher: str, fixes: list[str], res: QueryResult | None,
               ctx: AgentContext) -> VotedRun | None:
    if res is None:
        return None
    return VotedRun(attempt=attempt, source=source, cypher=cypher, fixes=list(fixes),
                    timeout_s=ctx.query_timeout_s, max_rows=ctx.max_rows, columns=list(res.columns),
                    rows=[list(r) for r in res.rows], truncated=bool(res.truncated))


def _vote_check(state: State, ctx: AgentContext) -> tuple[str, str | None, list[str]] | None:
    """The vote's check of ``state.raw`` when the vote checked and ran exactly this reply's query in this
    attempt (``_checked`` without the EXPLAIN, which its run stands for); else None: check it here."""
    kept = state.voted_run  # the vote keeps none when ``reuse_vote_run`` is off
    if kept is None or kept["attempt"] != state.loop_step:
        return None
    source, error = _cleaned(state.raw, ctx)
    if error is not None or source != kept["source"]:
        return None
    return kept["cypher"], None, list(kept["fixes"])


def _voted_result(state: State, ctx: AgentContext) -> QueryResult | None:
    """The vote's result for ``state.cypher`` when the vote ran exactly that text, in this attempt, with
    this timeout and row cap (the chosen reply as the vote checked it, validate taking that check); else
    None."""
    kept = state.voted_run  # the vote keeps none when ``reuse_vote_run`` is off
    if kept is None:
        return None
    same = (kept["attempt"], kept["cypher"], kept["timeout_s"], kept["max_rows"])
    if same != (state.loop_step, state.cypher, ctx.query_timeout_s, ctx.max_rows):
        return None
    return QueryResult(columns=kept["columns"], rows=kept["rows"], truncated=kept["truncated"])


def correct(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """A later attempt: the model sees the failed query and the database's (or checker's) message."""
    start = time.perf_counter()
    gen = runtime.context.generator
    attempt = state.loop_step + 1
    _emit(runtime, "retry", attempt=attempt, label=f"retry {attempt}", error=state.error)
    failed = state.cypher or state.raw.strip() or "(no query)"
    feedback = ErrorFeedback(cypher=failed, error=state.error or "the query failed")
    raw = gen.generate(state.question, state.schema_text, state.examples, feedback)
    return {
        "raw": raw or "",
        "loop_step": 1,
        "model_version": gen.version,
        "timings": {"correct": _ms(start)},
    }


def validate(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Clean the reply; static read-only gate; schema check (with direction fix); EXPLAIN. The reply the vote
    chose and ran in this attempt is not checked again: the vote checked it the same way (``_vote_check``)."""
    start = time.perf_counter()
    ctx = runtime.context
    _emit(runtime, "validating", attempt=state.loop_step)
    timing = {"validate": 0.0}

    cypher, error, fixes = _vote_check(state, ctx) or _checked(state.raw, ctx)
    timing["validate"] = _ms(start)
    if error is not None:
        return {**_failure(state, "validate", error, cypher, fixes), "fixes": fixes, "timings": timing}
    return {"cypher": cypher, "error": None, "fixes": fixes, "timings": timing}


def execute(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Run the validated query read-only with a timeout and a row cap."""
    start = time.perf_counter()
    ctx = runtime.context
    _emit(runtime, "executing", attempt=state.loop_step)
    fixes = list(state.fixes)
    voted = _voted_result(state, ctx)
    res, message, timed_out = (voted, None, False) if voted is not None else _run(state.cypher, ctx)
    spent = {"voted_run": None} if state.voted_run is not None else {}
    if res is None:
        return {
            **_failure(state, "execute", message or "the query failed", state.cypher, fixes),
            "timed_out": timed_out,
            **spent,
            "timings": {"execute": _ms(start)},
        }
    record = _attempt(state, "execute", state.cypher, None, fixes, row_count=len(res.rows))
    return {
        "columns": list(res.columns),
        "rows": [list(r) for r in res.rows],
        "truncated": bool(res.truncated),
        "error": None,
        "attempts": [record],
        **spent,
        "timings": {"execute": _ms(start)},
    }


def assess(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """The answer's confidence from the candidates' agreement and the repair history (``confidence_of``)."""
    value, doubts = confidence_of(state.agreement, state.loop_step, len(state.fixes), not state.rows)
    return {"confidence": value, "doubts": doubts, "timings": {"assess": 0.0}}


def escalate(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Low confidence (or no answer): ask the escalation model with the same prompt, check and run its query
    the same way. Its rows answer when it runs; otherwise the small model's outcome stands."""
    start = time.perf_counter()
    ctx = runtime.context
    assert ctx.escalation is not None
    big = ctx.escalation
    _emit(runtime, "escalating", model=big.version, label=f"asking {big.version}")
    done: dict[str, Any] = {"escalated": True}
    try:
        raw = big.generate(state.question, state.schema_text, state.examples, None) or ""
    except ModelError as e:
        log.warning("escalation to %s failed: %s", big.version, e)
        return {**done, "escalation_error": str(e), "timings": {"escalate": _ms(start)}}
    cypher, error, fixes = _checked(raw, ctx)
    res, stage = None, "validate"
    if error is None:
        res, error, _ = _run(cypher, ctx)
        stage = "execute"
    record = Attempt(attempt=state.loop_step + 1, cypher=cypher, raw=raw, error=error, stage=stage,
                     fixes=fixes, row_count=None if res is None else len(res.rows))
    done.update(attempts=[record], timings={"escalate": _ms(start)})
    if res is None:
        log.info("escalation to %s: its query failed too: %s", big.version, error)
        return {**done, "escalation_error": error,
                "doubts": state.doubts + [f"{big.version}'s query failed too"]}
    value, doubts = confidence_of(None, 1, len(fixes), not res.rows)
    log.info("escalated to %s (small model's confidence %s): its query ran, %d rows", big.version,
             state.confidence, len(res.rows))
    return {**done, "raw": raw, "cypher": cypher, "fixes": fixes, "error": None, "columns": list(res.columns),
            "rows": [list(r) for r in res.rows], "truncated": bool(res.truncated), "answered_by": big.version,
            "model_version": big.version, "confidence": value, "doubts": doubts}


def answer(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """A short sentence from the rows ("no matching data" when there are none); a low confidence is said."""
    start = time.perf_counter()
    text = write_answer(
        state.question, state.columns, state.rows, state.truncated, runtime.context.answer_writer
    )
    if state.confidence is not None and state.confidence < runtime.context.confidence_threshold:
        doubts = "; ".join(state.doubts) or "an uncertain query"
        text = f"{text}\n\n{LOW_CONFIDENCE_NOTE.format(confidence=state.confidence, doubts=doubts)}"
    status = "ok" if state.rows else "no_data"
    return {"answer": text, "status": status, "timings": {"answer": _ms(start)}}


def give_up(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """No query worked within max_attempts: say so, with the last error."""
    n = state.loop_step
    return {
        "answer": GIVE_UP_ANSWER.format(n=n, s="" if n == 1 else "s", error=state.error or "unknown error"),
        "status": "failed",
        "confidence": 0.0,
        "rows": [],
        "columns": [],
        "timings": {"give_up": 0.0},
    }


# --- routers --------------------------------------------------------------------------------------
def route_after_scope(state: State) -> Literal["retrieve", "__end__"]:
    return END if state.status == "refused" else "retrieve"


def _retry_or_give_up(state: State, runtime: Runtime[AgentContext]) -> Literal["correct", "give_up"]:
    return "correct" if state.loop_step < runtime.context.max_attempts else "give_up"


def route_after_generate(state: State) -> Literal["vote", "validate"]:
    return "vote" if len(state.candidates) > 1 else "validate"


def route_after_validate(
    state: State, runtime: Runtime[AgentContext]
) -> Literal["execute", "correct", "give_up"]:
    return "execute" if state.error is None else _retry_or_give_up(state, runtime)


def route_after_execute(
    state: State, runtime: Runtime[AgentContext]
) -> Literal["assess", "correct", "give_up"]:
    if state.error is None:
        return "assess"
    return "give_up" if state.timed_out else _retry_or_give_up(state, runtime)


def _may_escalate(state: State, ctx: AgentContext) -> bool:
    return ctx.escalation is not None and not state.escalated and ctx.confidence_threshold > 0


def route_after_assess(state: State, runtime: Runtime[AgentContext]) -> Literal["escalate", "answer"]:
    low = (state.confidence or 0.0) < runtime.context.confidence_threshold
    return "escalate" if low and _may_escalate(state, runtime.context) else "answer"


def route_after_give_up(state: State, runtime: Runtime[AgentContext]) -> Literal["escalate", "__end__"]:
    return "escalate" if _may_escalate(state, runtime.context) else END


def route_after_escalate(state: State) -> Literal["answer", "__end__"]:
    """Its query ran, or the small model's answer stands: answer; the small model had given up: end."""
    return END if state.escalation_error is not None and state.status == "failed" else "answer"


def _with_context(step: Callable[..., Any], context: AgentContext | None) -> Callable[..., Any]:
    """``step`` (a node) run with ``context`` when the run brings none (or not an ``AgentContext``: the
    LangGraph server passes ``{}``); ``step`` itself when no context is bound or it reads none."""
    if context is None or "runtime" not in inspect.signature(step).parameters:
        return step

    @functools.wraps(step)  # keeps the signature LangGraph reads (``runtime``)
    def bound(state: State, runtime: Runtime[AgentContext]) -> Any:
        own = isinstance(runtime.context, AgentContext)
        return step(state, runtime if own else runtime.override(context=context))

    return bound


REDUCERS: dict[str, Callable[[Any, Any], Any]] = {
    name: hint.__metadata__[0]
    for name, hint in get_type_hints(State, include_extras=True).items()
    if get_origin(hint) is Annotated
}
"""``State``'s fields that accumulate (``loop_step``, ``attempts``, ``timings``) and their reducers."""


def updated(state: State, update: dict[str, Any]) -> State:
    """``state`` with a node's ``update`` applied as LangGraph applies it (the field's reducer, else the new
    value): the state the node's router reads."""
    return replace(state, **{k: REDUCERS[k](getattr(state, k), v) if k in REDUCERS else v
                             for k, v in update.items()})


def destinations(router: Callable[..., Any]) -> tuple[str, ...]:
    """The nodes a router may send to: its return annotation's ``Literal`` (the graph's drawing)."""
    return get_args(get_type_hints(router)["return"])


def routed(step: Callable[..., Any], router: Callable[..., Any]) -> Callable[..., Any]:
    """``step`` with its router in the same task: ``Command(update=step's update, goto=router(the state after
    it))``. A conditional edge would route the same way in a task of its own, which copies every channel of
    the state to read it afresh and traces the router as a run: ~0.4 ms a question of ~5.5 on a 2-core CPU
    (``scripts/bench_ask_overhead.py``), for 5 routers a question."""
    with_runtime = "runtime" in inspect.signature(router).parameters

    def node(state: State, runtime: Runtime[AgentContext]) -> Command:
        update = step(state, runtime)
        after = updated(state, update)
        return Command(update=update, goto=router(after, runtime) if with_runtime else router(after))

    node.__name__, node.__qualname__, node.__doc__ = step.__name__, step.__qualname__, step.__doc__
    return node


def build_graph(retry_policy: RetryPolicy | None = DB_RETRY, context: AgentContext | None = None):
    """A fresh compiled graph (tests build their own; ``graph`` below is the shared one).

    ``context``: the dependencies a run uses when it is invoked without one (LangGraph Studio, ``langgraph
    dev``: the server passes no ``AgentContext``, ``ui.studio.make_graph`` binds one built from the settings);
    a run's own context still wins. A graph with one bound declares no context schema, so LangGraph does not
    try to build an ``AgentContext`` from the server's ``{}``.

    A node followed by a choice routes itself (``routed``: its router, ``route_after_*``, run in its task).
    """
    builder = StateGraph(
        State, context_schema=None if context is not None else AgentContext, input_schema=InputState,
        output_schema=OutputState,
    )

    def node(name: str, step: Callable[..., Any], router: Callable[..., Any] | None = None,
             **kw: Any) -> None:
        if router is not None:
            step, kw["destinations"] = routed(step, router), destinations(router)
        builder.add_node(name, _with_context(step, context), **kw)

    node("check_scope", check_scope_node, route_after_scope)
    node("retrieve", retrieve, retry_policy=retry_policy)
    node("generate", generate, route_after_generate)
    node("vote", vote, retry_policy=retry_policy)
    node("correct", correct)
    node("validate", validate, route_after_validate, retry_policy=retry_policy)
    node("execute", execute, route_after_execute, retry_policy=retry_policy)
    node("assess", assess, route_after_assess)
    node("escalate", escalate, route_after_escalate, retry_policy=retry_policy)
    node("answer", answer)
    node("give_up", give_up, route_after_give_up)
    builder.add_edge(START, "check_scope")
    builder.add_edge("retrieve", "generate")
    builder.add_edge("vote", "validate")
    builder.add_edge("correct", "validate")
    builder.add_edge("answer", END)
    return builder.compile(name="cypherloop-agent")


graph = build_graph()


# --- the convenience wrapper ------------------------------------------------------------------------
@dataclass
class _PlainRuntime:
    """Enough of LangGraph's Runtime to call a node outside the graph (``prefetch`` runs ``retrieve``)."""

    context: AgentContext
    stream_writer: Any = None


OUTPUT_FIELDS = tuple(f.name for f in fields(OutputState))
StepEvent = dict[str, Any]
"""``{"step", "label", …}``; the last one is ``{"step": "answer", "output": AgentAnswer}``."""


WARM_UP_QUESTIONS = (
    "How many nodes are there?",
    "Which nodes have the most relationships, and for each of the ten first, what are its labels, its "
    "properties and the types of its relationships, in descending order of the number of relationships?",
)
"""``CypherAgent.warm_up``'s questions: two prompt lengths (the examples retrieved for them differ too)."""


class CypherAgent:
    """Question in, answer out: the compiled graph with its dependencies bound (``agent.factory.make_agent``).

    ``ask(question) -> AgentAnswer``; ``timings`` holds milliseconds per node. ``stream(question)`` yields
    step events and ends with an ``answer`` event carrying that AgentAnswer. Infrastructure failures
    (database down after retries, model not loadable) do not raise: they come back with
    ``status == "error"`` and the message in ``error``. ``close()`` (or ``with``) closes the graph store when
    the agent opened it.
    """

    def __init__(
        self,
        settings: Settings,
        graph_store: GraphStore,
        generator: CypherGenerator,
        feedback_store: AgentStore | None = None,
        *,
        answer_writer: AnswerWriter | None = None,
        examples: list[Example] | None = None,
        compiled: Any | None = None,
        example_pool: ExampleSource | None = None,
        owns_graph_store: bool = False,
        escalation: CypherGenerator | None = None,
    ) -> None:
        self.settings = settings
        self.graph_store = graph_store
        self.generator = generator
        self.feedback_store = feedback_store
        self.context = AgentContext.from_settings(settings, graph_store, generator, feedback_store,
                                                  answer_writer=answer_writer, examples_override=examples,
                                                  example_pool=example_pool, escalation=escalation)
        self.graph = compiled if compiled is not None else graph
        self._owns_graph_store = owns_graph_store
        self._log_warned = False

    @property
    def model_version(self) -> str:
        return self.generator.version

    def use_feedback_store(self, store: AgentStore | None) -> None:
        """Retrieve from and log to ``store`` from the next question on (a cold ``ask`` opens it while the
        model loads)."""
        self.feedback_store = store
        self.context.feedback_store = store

    def close(self) -> None:
        """Close the graph store if this agent opened it."""
        if self._owns_graph_store:
            self.graph_store.close()

    def __enter__(self) -> CypherAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ask(self, question: str, session_id: str = "", draft: list[Generation] | None = None) -> AgentAnswer:
        """Answer one question; never raises for database/model outages (status "error").

        ``draft``: first replies computed ahead by ``prefetch`` (the model is not asked again for them).
        """
        result: AgentAnswer | None = None
        for event in self._events(question, session_id, draft, live=False):
            if event["step"] == "answer":
                result = event["output"]
        assert result is not None
        return result

    def warm_up(self, batch_size: int = 0, chunks: Sequence[Sequence[str]] = ()) -> list[dict[str, Any]]:
        """Compile at load what the first questions would (the transformers backend's static decoding step on
        a GPU, ``TransformersGenerator.warm_up``): two prompts built as ``ask`` builds them, of different
        lengths, asked the way the first attempt asks (1 reply, or the candidates). Long-lived processes call
        it once (the UI, ``serve``, ``eval`` one question at a time, the latency bench); a one-shot ``ask``
        does not (it answers with the dynamic cache). Returns the model calls made ([] where nothing
        compiles); a failure is logged, not raised: the first question reports it again. ``batch_size`` > 1:
        the shapes of ``prefetch``'s batches of that many questions instead (``batch_cache=static``);
        ``chunks``: the questions those batches will hold, when the caller knows them (``cypherloop eval``):
        their prompts, built as ``prefetch`` builds them, give the batches' exact shapes."""
        batched: dict[str, Any] = {"batch_size": batch_size} if batch_size > 1 else {}
        if not getattr(self.generator, "warms_up", lambda **_: False)(**batched):
            return []
        try:
            prompts = [self._prompt(q) for q in WARM_UP_QUESTIONS]
            if batch_size > 1 and chunks:
                batched["chunks"] = [[self._prompt(q) for q in chunk] for chunk in chunks]
            return self.generator.warm_up(prompts, self.context.candidates,  # type: ignore[attr-defined]
                                          **batched)
        except Exception as e:  # noqa: BLE001 - an optimisation: serving works without it
            log.warning("warming the model up failed (%s: %s)", type(e).__name__, e)
            return []

    def prefetch(self, questions: list[str], on_ready: Ready | None = None) -> list[list[Generation]]:
        """First replies for many questions from batched model calls, built exactly as ``ask`` builds its
        prompt (same schema text and retrieved examples); pass each to ``ask(question, draft=…)``.
        ``on_ready(index, replies)`` is told of each question once, with the replies returned for it, from
        the thread making the call: while the batch still writes the others where the backend decodes them
        together (the transformers backend's graphed batches), else when the call returns (``first_replies``);
        a caller may ask the question at once, but should only hand it on (the decoding waits for it), and
        what it raises is raised here."""
        return first_replies(self.generator, [self._prompt(q) for q in questions], self.context, on_ready)

    def _prompt(self, question: str) -> PromptInput:
        """``question``'s prompt as ``ask`` builds it: the schema text and the retrieved examples."""
        st = retrieve(State(question=question), _PlainRuntime(self.context))
        return PromptInput(question, st["schema_text"], st["examples"])

    def stream(
        self, question: str, session_id: str = "", draft: list[Generation] | None = None
    ) -> Iterator[StepEvent]:
        """Step events for a UI, in order, e.g.::

            {"step": "retrieving", "label": "retrieving"}
            {"step": "generating", "label": "generating", "attempt": 1}
            {"step": "validating", "label": "validating", "attempt": 1}
            {"step": "retry", "label": "retry 2", "attempt": 2, "error": "Unknown label :Custmer …"}
            {"step": "validating", "label": "validating", "attempt": 2}
            {"step": "executing", "label": "executing", "attempt": 2}
            {"step": "answer", "label": "answer", "output": AgentAnswer(...)}

        A refused question yields ``{"step": "refused", "reason": …}`` then the answer event.
        """
        return self._events(question, session_id, draft, live=True)

    def _events(self, question: str, session_id: str, draft: list[Generation] | None,
                live: bool) -> Iterator[StepEvent]:
        """``stream``'s events; ``live`` False: the answer event only. Step events make LangGraph run each
        node in a worker thread so that they reach the caller while it runs (``custom`` stream mode): two
        thread starts and hand-overs a question, LangGraph's ~12 ms of the H200's 161 ms p50 (round 11), ~7
        ms on this CPU; without them each node runs inline."""
        start = time.perf_counter()
        final: dict[str, Any] = {}
        error: CypherloopError | None = None
        try:
            inp = InputState(question=question or "", draft=list(draft or []))
            modes = ["custom", "values"] if live else ["values"]
            for mode, chunk in self.graph.stream(inp, context=self.context, stream_mode=modes):
                if mode == "custom":
                    yield chunk
                else:
                    final = chunk if isinstance(chunk, dict) else asdict(chunk)
        except CypherloopError as e:
            error = e
            log.warning("agent failed: %s", e)
        yield {
            "step": "answer",
            "label": "answer",
            "output": self._answer(final, question, session_id, start, error),
        }

    def _answer(self, final: dict[str, Any], question: str, session_id: str, start: float,
                error: CypherloopError | None) -> AgentAnswer:
        out = AgentAnswer(**{name: final[name] for name in OUTPUT_FIELDS if name in final})
        out.attempts = [Attempt(**a) for a in out.attempts]
        if error is not None:
            out.status, out.error, out.answer = "error", str(error), UNAVAILABLE_ANSWER.format(error=error)
            out.rows, out.columns = [], []
        out.model_version = out.model_version or self.generator.version
        out.answered_by = out.answered_by or (out.model_version if out.ran else "")
        out.latency_ms = _ms(start)
        out.timings = {**out.timings, "total": out.latency_ms}
        out.question, out.graph, out.session_id = question, self.context.graph_name, session_id
        return out

    # --- logging to the feedback store ---------------------------------------------------------------
    def interaction(self, answer: AgentAnswer) -> Interaction:
        """The feedback store's record of an answer."""
        return Interaction(
            question=answer.question,
            graph=answer.graph or self.context.graph_name,
            final_cypher=answer.cypher or None,
            answer=answer.answer,
            row_count=len(answer.rows),
            attempts=[
                {"cypher": a["cypher"], "error": a["error"], "stage": a["stage"]} for a in answer.attempts
            ],
            latency_ms=float(answer.latency_ms),
            model_version=answer.model_version,
            schema_fingerprint=answer.schema_fingerprint,
            session_id=answer.session_id,
            ok=answer.ran,
            confidence=answer.confidence,
            answered_by=answer.answered_by,
        )

    def log(self, answer: AgentAnswer) -> str | None:
        """Log an answer to the feedback store; returns the interaction id, None when not logged.

        Never raises: a failing store is reported once as a warning and the answer stands.
        """
        if self.feedback_store is None or (answer.status == "refused" and not answer.question.strip()):
            return None
        try:
            iid = self.feedback_store.log_interaction(self.interaction(answer))
            if answer.escalated and answer.escalation_error is None and answer.ran:
                self._store_escalated(answer, iid)
            return iid
        except Exception as e:  # noqa: BLE001 - logging must never cost the answer
            if not self._log_warned:
                log.warning("could not log the interaction to the feedback store: %s", e)
                self._log_warned = True
            return None

    def _store_escalated(self, answer: AgentAnswer, interaction_id: str) -> None:
        """The escalation model's verified answer becomes a pending example (reviewed like a correction)."""
        if not isinstance(self.feedback_store, ExampleWriter):
            return
        self.feedback_store.add_example(VerifiedExample(
            question=answer.question, cypher=answer.cypher, graph=answer.graph or self.context.graph_name,
            source="escalation", status="pending", result_fingerprint=result_fingerprint(answer.rows),
            interaction_id=interaction_id, schema_fingerprint=answer.schema_fingerprint))


__all__ = ["AgentContext", "CypherAgent", "StepEvent", "build_graph", "graph"]
