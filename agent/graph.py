"""The agent: question → Cypher → checked → run read-only → repaired on error → answer (LangGraph).

    check_scope ─(refused)──────────────────────────────────────────────► END
        │
    retrieve → generate ─(n candidates)→ vote ─┐
                   │                            ▼
                   └──────────────────────► validate ─(ok)→ execute ─(ok)→ answer ──► END
                              ▲                 │ (error)      │ (error)
                              └──── correct ◄───┴──────────────┘  (while loop_step < max_attempts)
                                       └─(max_attempts reached, or a timeout)→ give_up ► END

With ``candidates`` > 1 the first attempt samples several replies in one batched call (the greedy one
first); ``vote`` runs each read-only and keeps the reply whose result most of them agree on
(execution-checked candidates); the agreement is the answer's confidence.

Runtime dependencies and limits travel as the graph's context (``AgentContext``), so one compiled
graph serves every graph store, generator and setting. Transient database faults
(``GraphUnavailable``) are retried by the nodes' ``RetryPolicy``; the model's correction loop only
sees errors the model can fix (syntax, schema, refused writes, runtime errors). A query that runs past
its time limit ends the question: another attempt would cost the full limit again.

``CypherAgent`` wraps it for callers: ``ask`` returns an ``AgentAnswer``, ``stream`` yields step events for a
UI. Build one with ``agent.factory.make_agent``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import RetryPolicy

from agent.answer import AnswerWriter, write_answer
from agent.cleanup import clean_cypher
from agent.core.cypher_text import result_fingerprint
from agent.core.errors import (
    CypherloopError,
    GraphAuthError,
    GraphError,
    GraphUnavailable,
    QueryTimeout,
    UnknownGraph,
    WriteRefused,
)
from agent.core.feedback import AgentStore, ExampleSource, Interaction
from agent.core.prompt import ErrorFeedback, Example
from agent.core.settings import Settings
from agent.graphdb.base import GraphStore
from agent.graphdb.readonly import check_read_only
from agent.models.base import CypherGenerator, Generation, PromptInput
from agent.schema_check import check_cypher
from agent.scope import check_scope
from agent.state import AgentAnswer, Attempt, InputState, OutputState, State

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

EXAMPLES_MAX_CHARS = 4000
"""Few-shot examples in one prompt, in characters (about 1,000 tokens of SmolLM2's tokenizer)."""

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
    few_shot_min_similarity: float = 0.5
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
    examples_max_chars: int = EXAMPLES_MAX_CHARS
    """Budget of the few-shot examples in the prompt (characters, about a third as many tokens)."""

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
            candidates=settings.candidates,
            candidate_temperature=settings.candidate_temperature,
            max_question_chars=settings.max_question_chars,
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
            graph = ctx.graph_name or ctx.graph_store.name
            examples = [
                e
                for e in ctx.feedback_store.similar_examples(
                    state.question, graph, k=ctx.few_shot_k, min_similarity=ctx.few_shot_min_similarity
                )
                if e.cypher
            ]
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
    generator: CypherGenerator, prompts: list[PromptInput], ctx: AgentContext
) -> list[list[Generation]]:
    """The first attempt's replies for each prompt: one, or ``ctx.candidates`` (greedy first, then
    sampled)."""
    if ctx.candidates <= 1:
        if len(prompts) == 1:
            p = prompts[0]
            return [[Generation(generator.generate(p.question, p.schema_text, p.examples, None) or "")]]
        return generator.generate_batch(prompts, n=1)
    greedy = generator.generate_batch(prompts, n=1, temperature=0.0)
    sampled = generator.generate_batch(prompts, n=ctx.candidates - 1, temperature=ctx.candidate_temperature)
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


def vote(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Run every candidate read-only; keep the reply whose (non-empty) result most candidates agree on.

    Ties go to the group holding the greedy reply, then to the higher summed log-probability. Candidates
    that fail the checks or the database take no part; when none returns rows the greedy reply stands.
    """
    start = time.perf_counter()
    ctx = runtime.context
    _emit(runtime, "voting", candidates=len(state.candidates))
    schema = ctx.graph_store.schema()
    groups: dict[Any, list[int]] = {}
    outcome: dict[str, Any] = {}
    for i, cand in enumerate(state.candidates):
        cypher = clean_cypher(cand.text)
        if not cypher:
            continue
        if cypher in outcome:
            key = outcome[cypher]
        else:
            key = None
            try:
                check_read_only(cypher)
                checked = check_cypher(cypher, schema)
                if checked.ok:
                    res = ctx.graph_store.query(
                        checked.cypher, timeout_s=ctx.query_timeout_s, max_rows=ctx.max_rows
                    )
                    key = result_fingerprint(res.rows) if res.rows else None
            except INFRASTRUCTURE_ERRORS:
                raise
            except GraphError:
                key = None
            outcome[cypher] = key
        if key is not None:
            groups.setdefault(key, []).append(i)
    chosen, agreement = 0, 0.0
    if groups:
        def rank(members: list[int]) -> tuple[int, int, float]:
            logprob = max((state.candidates[i].logprob or float("-inf")) for i in members)
            return (len(members), int(0 in members), logprob)

        best = max(groups.values(), key=rank)
        chosen = 0 if 0 in best else max(best, key=lambda i: state.candidates[i].logprob or float("-inf"))
        agreement = round(len(best) / len(state.candidates), 3)
    return {
        "raw": state.candidates[chosen].text or "",
        "agreement": agreement,
        "timings": {"vote": _ms(start)},
    }


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
    """Clean the reply; static read-only gate; schema check (with direction fix); EXPLAIN."""
    start = time.perf_counter()
    ctx = runtime.context
    _emit(runtime, "validating", attempt=state.loop_step)
    timing = {"validate": 0.0}

    def fail(error: str, cypher: str, fixes: list[str] | None = None) -> dict[str, Any]:
        timing["validate"] = _ms(start)
        return {**_failure(state, "validate", error, cypher, fixes), "fixes": fixes or [], "timings": timing}

    cypher = clean_cypher(state.raw)
    if not cypher:
        return fail(NO_CYPHER_ERROR, "")
    try:
        check_read_only(cypher)
    except WriteRefused as e:
        return fail(f"{str(e).rstrip('.')}. Write a query that only reads (MATCH … RETURN).", cypher)
    checked = check_cypher(cypher, ctx.graph_store.schema())
    if not checked.ok:
        return fail(checked.message(), cypher, checked.fixes)
    cypher = checked.cypher
    try:
        ctx.graph_store.explain(cypher)
    except INFRASTRUCTURE_ERRORS:
        raise  # GraphUnavailable is retried by the node's RetryPolicy
    except GraphError as e:
        return fail(_db_message(e), cypher, checked.fixes)
    timing["validate"] = _ms(start)
    return {"cypher": cypher, "error": None, "fixes": checked.fixes, "timings": timing}


def execute(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Run the validated query read-only with a timeout and a row cap."""
    start = time.perf_counter()
    ctx = runtime.context
    _emit(runtime, "executing", attempt=state.loop_step)
    fixes = list(state.fixes)
    try:
        res = ctx.graph_store.query(state.cypher, timeout_s=ctx.query_timeout_s, max_rows=ctx.max_rows)
    except INFRASTRUCTURE_ERRORS:
        raise  # GraphUnavailable is retried by the node's RetryPolicy
    except GraphError as e:
        message = _db_message(e)
        if isinstance(e, QueryTimeout):
            message += (f" (time limit {ctx.query_timeout_s:g} s: write a simpler, more selective query, "
                        "e.g. with LIMIT)")
        return {
            **_failure(state, "execute", message, state.cypher, fixes),
            "timed_out": isinstance(e, QueryTimeout),
            "timings": {"execute": _ms(start)},
        }
    record = _attempt(state, "execute", state.cypher, None, fixes, row_count=len(res.rows))
    return {
        "columns": list(res.columns),
        "rows": [list(r) for r in res.rows],
        "truncated": bool(res.truncated),
        "error": None,
        "attempts": [record],
        "timings": {"execute": _ms(start)},
    }


def answer(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """A short sentence from the rows; "no matching data" when there are none."""
    start = time.perf_counter()
    text = write_answer(
        state.question, state.columns, state.rows, state.truncated, runtime.context.answer_writer
    )
    status = "ok" if state.rows else "no_data"
    return {"answer": text, "status": status, "timings": {"answer": _ms(start)}}


def give_up(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """No query worked within max_attempts: say so, with the last error."""
    n = state.loop_step
    return {
        "answer": GIVE_UP_ANSWER.format(n=n, s="" if n == 1 else "s", error=state.error or "unknown error"),
        "status": "failed",
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
) -> Literal["answer", "correct", "give_up"]:
    if state.error is None:
        return "answer"
    return "give_up" if state.timed_out else _retry_or_give_up(state, runtime)


def build_graph(retry_policy: RetryPolicy | None = DB_RETRY):
    """A fresh compiled graph (tests build their own; ``graph`` below is the shared one)."""
    builder = StateGraph(
        State, context_schema=AgentContext, input_schema=InputState, output_schema=OutputState
    )
    builder.add_node("check_scope", check_scope_node)
    builder.add_node("retrieve", retrieve, retry_policy=retry_policy)
    builder.add_node("generate", generate)
    builder.add_node("vote", vote, retry_policy=retry_policy)
    builder.add_node("correct", correct)
    builder.add_node("validate", validate, retry_policy=retry_policy)
    builder.add_node("execute", execute, retry_policy=retry_policy)
    builder.add_node("answer", answer)
    builder.add_node("give_up", give_up)
    builder.add_edge(START, "check_scope")
    builder.add_conditional_edges("check_scope", route_after_scope)
    builder.add_edge("retrieve", "generate")
    builder.add_conditional_edges("generate", route_after_generate)
    builder.add_edge("vote", "validate")
    builder.add_edge("correct", "validate")
    builder.add_conditional_edges("validate", route_after_validate)
    builder.add_conditional_edges("execute", route_after_execute)
    builder.add_edge("answer", END)
    builder.add_edge("give_up", END)
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
    ) -> None:
        self.settings = settings
        self.graph_store = graph_store
        self.generator = generator
        self.feedback_store = feedback_store
        self.context = AgentContext.from_settings(settings, graph_store, generator, feedback_store,
                                                  answer_writer=answer_writer, examples_override=examples,
                                                  example_pool=example_pool)
        self.graph = compiled if compiled is not None else graph
        self._owns_graph_store = owns_graph_store
        self._log_warned = False

    @property
    def model_version(self) -> str:
        return self.generator.version

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
        for event in self.stream(question, session_id=session_id, draft=draft):
            if event["step"] == "answer":
                result = event["output"]
        assert result is not None
        return result

    def prefetch(self, questions: list[str]) -> list[list[Generation]]:
        """First replies for many questions from batched model calls, built exactly as ``ask`` builds its
        prompt (same schema text and retrieved examples); pass each to ``ask(question, draft=…)``."""
        prompts = []
        for q in questions:
            st = retrieve(State(question=q), _PlainRuntime(self.context))
            prompts.append(PromptInput(q, st["schema_text"], st["examples"]))
        return first_replies(self.generator, prompts, self.context)

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
        start = time.perf_counter()
        final: dict[str, Any] = {}
        error: CypherloopError | None = None
        try:
            inp = InputState(question=question or "", draft=list(draft or []))
            for mode, chunk in self.graph.stream(inp, context=self.context, stream_mode=["custom", "values"]):
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
        )

    def log(self, answer: AgentAnswer) -> str | None:
        """Log an answer to the feedback store; returns the interaction id, None when not logged.

        Never raises: a failing store is reported once as a warning and the answer stands.
        """
        if self.feedback_store is None or (answer.status == "refused" and not answer.question.strip()):
            return None
        try:
            return self.feedback_store.log_interaction(self.interaction(answer))
        except Exception as e:  # noqa: BLE001 - logging must never cost the answer
            if not self._log_warned:
                log.warning("could not log the interaction to the feedback store: %s", e)
                self._log_warned = True
            return None


__all__ = ["AgentContext", "CypherAgent", "StepEvent", "build_graph", "graph"]
