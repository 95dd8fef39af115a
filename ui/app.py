"""The Gradio app: chat with 👍/👎 and corrections, review, schema, training.

    cypherloop ui [--host H] [--port N] [--graph NAME] [--home DIR]

``build_app(agent, store, settings)`` builds the ``gr.Blocks``; ``main`` only builds the parts (the
feedback store, ``agent.factory.make_agent``) and launches. The handlers live on ``ChatController`` as
plain methods over plain values, so tests call them without a browser.

Flow of one question: the answer streams its steps (retrieving, generating, validating, executing,
retry n) into a collapsible message, then the answer with its final Cypher; the rows go to the table
under the chat. The interaction is logged to the feedback store when answered. 👍/👎 (Chatbot
``.like``; a second click on the same thumb undoes it and arrives as ``liked == ""``) are stored
against that interaction; a 👎 opens the correction panel, whose Run goes through the same read-only
``GraphStore.query`` gate and whose Save goes through ``store.add_correction`` (which runs it again).
In the Review tab a selected example's question and Cypher can be edited, run through the same gate and
approved as edited (``store.approve_revised``: run again, stored approved, the original kept, rejected).
"""

# No `from __future__ import annotations` here: Gradio finds gr.LikeData / gr.SelectData parameters
# through their evaluated type annotations.

import argparse
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

from agent.core.env import quiet_libraries
from agent.core.errors import ConfigError, CypherloopError, InvalidCorrection
from agent.core.feedback import Feedback, FeedbackStore
from agent.core.settings import Settings, load_settings
from agent.factory import make_agent
from agent.graph import StepEvent
from agent.graphdb import GraphStore, open_graph
from agent.state import AgentAnswer
from feedback_store.chroma import ChromaFeedbackStore
from feedback_store.pool import ExamplePool
from finetune.drift import adapter_drift, approve, approve_edited
from ui.ask_server import AskServer
from ui.training_tab import TrainingHooks, build_training_tab

STEP_ICONS = {
    "retrieving": "🔎",
    "generating": "✍️",
    "validating": "🧪",
    "executing": "▶️",
    "retry": "🔁",
    "refused": "🚫",
}
MAX_ERROR_CHARS = 300
FEEDBACK_OPTIONS = ("Like", "Dislike")
"""The Chatbot's thumbs; while an answer streams the chat shows none (``_wire_chat``)."""
REVIEW_COLUMNS = ["id", "kind", "status", "source", "graph", "question", "cypher", "created"]
REVIEW_WIDTHS = ["11%", "8%", "7%", "9%", "6%", "21%", "29%", "9%"]
"""Fixed widths, so the question and the Cypher wrap in full instead of running off the table."""
ID_CHARS = 12
"""Ids are shown (Review table, save message) and accepted (a unique prefix) at this length."""


# --- small pure helpers ------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def rows_frame(columns: list[str], rows: list[list[Any]]) -> Any:
    """A pandas DataFrame for gr.Dataframe; nodes, maps and lists become JSON text."""
    import pandas as pd

    cols = list(columns) or ([f"col{i + 1}" for i in range(len(rows[0]))] if rows else [])
    return pd.DataFrame([[_cell(v) for v in r] for r in rows], columns=cols)


def _short(text: str | None, n: int = MAX_ERROR_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def step_line(event: dict[str, Any]) -> str:
    """One line of the steps message for an agent step event."""
    step = event.get("step", "")
    label = event.get("label") or step
    line = f"{STEP_ICONS.get(step, '•')} {label}"
    if step in ("generating", "validating", "executing") and event.get("attempt"):
        line += f" (attempt {event['attempt']})"
    if step == "retry" and event.get("error"):
        line += f": previous error: {_short(event['error'])}"
    if step == "refused" and event.get("reason"):
        line += f" ({event['reason']})"
    return line


def seconds(ms: float) -> str:
    """A duration for people: ``0.8 s``, ``12.4 s``, ``2 min 4 s``."""
    s = (ms or 0.0) / 1000
    if s < 60:
        return f"{s:.1f} s"
    return f"{int(s // 60)} min {round(s % 60)} s"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def answer_markdown(answer: AgentAnswer) -> str:
    """The answer message: the sentence, the final Cypher as a code block, a footer (answered or not)."""
    text = answer.answer or "(no answer)"
    if answer.status == "error":
        return f"⚠️ {text}"
    parts = [text]
    if answer.cypher:
        label = "Last query tried" if answer.status == "failed" else "Cypher"
        parts.append(f"{label}:\n```cypher\n{answer.cypher.strip()}\n```")
    footer = []
    if answer.ran:
        footer.append(_plural(len(answer.rows), "row") + (" (truncated)" if answer.truncated else ""))
    elif answer.status == "failed":
        footer.append("no query worked")
    if answer.attempts:
        footer.append(_plural(len(answer.attempts), "attempt"))
    footer += [seconds(answer.latency_ms), answer.model_version]
    if answer.confidence is not None:
        footer.append(f"confidence {answer.confidence:.2f}")
    parts.append("*" + " · ".join(x for x in footer if x) + "*")
    return "\n\n".join(parts)


def new_state() -> dict[str, Any]:
    """Per-browser-session state: the messages shown, which interaction each answer belongs to."""
    return {
        "session_id": uuid.uuid4().hex[:16],
        "messages": [],
        "answers": {},
        "verdicts": {},
        "target": None,
        "busy": False,
    }


class ChatAgent(Protocol):
    """What the chat needs from an agent (``agent.graph.CypherAgent``, or ``UnavailableAgent``)."""

    graph_store: GraphStore | None

    def stream(self, question: str, session_id: str = "") -> Iterator[StepEvent]: ...

    def log(self, answer: AgentAnswer) -> str | None: ...


def error_answer(text: str, question: str, session_id: str = "", graph: str = "") -> AgentAnswer:
    """An answer that reports a failure (status "error")."""
    return AgentAnswer(
        answer=text, status="error", error=text, question=question, session_id=session_id, graph=graph
    )


class UnavailableAgent:
    """Stands in for the agent when the database or model could not be set up: every answer says why."""

    def __init__(self, reason: str, graph_store: GraphStore | None = None, graph: str = "") -> None:
        self.reason = reason
        self.graph_store = graph_store
        self.graph = graph

    def stream(self, question: str, session_id: str = "") -> Iterator[StepEvent]:
        answer = error_answer(
            f"Sorry, I cannot answer right now: {self.reason}", question, session_id, self.graph
        )
        answer.error = self.reason
        yield {"step": "answer", "output": answer}

    def log(self, answer: AgentAnswer) -> str | None:
        return None


# --- the handlers -----------------------------------------------------------------------------------------


class ChatController:
    """Everything the app does, as methods over plain values (Gradio wiring is in ``build_app``)."""

    def __init__(self, agent: ChatAgent, store: FeedbackStore | None, settings: Settings,
                 graph_store: GraphStore | None = None) -> None:
        self.agent = agent
        self.store = store
        self.settings = settings
        self.graph_store = graph_store if graph_store is not None else getattr(agent, "graph_store", None)

    # --- chat -----------------------------------------------------------------------------------------------
    def respond(self, question: str, state: dict[str, Any] | None):
        """Stream one answer. Yields ``(messages, state, rows_frame, status_text)`` after every step."""
        state = state or new_state()
        question = (question or "").strip()
        if not question:
            yield state["messages"], state, None, "Type a question first."
            return
        msgs = state["messages"]
        msgs.append({"role": "user", "content": question})
        steps = {"role": "assistant", "content": "", "metadata": {"title": "Working…", "status": "pending"}}
        msgs.append(steps)
        state["busy"] = True  # 👍/👎 wait for the answer (the buttons are hidden meanwhile, see build_app)
        yield msgs, state, None, ""
        lines: list[str] = []
        answer: AgentAnswer | None = None
        try:
            for event in self.agent.stream(question, session_id=state["session_id"]):
                if event.get("step") == "answer":
                    answer = event["output"]
                    break
                lines.append(step_line(event))
                steps["content"] = "\n".join(lines)
                steps["metadata"] = {"title": f"Working… {lines[-1]}", "status": "pending"}
                yield msgs, state, None, ""
        except Exception as e:  # noqa: BLE001 - the promise: a clear message, never a traceback
            answer = error_answer(
                f"Sorry, something failed while answering: {type(e).__name__}: {e}",
                question,
                state["session_id"],
            )
        answer = answer or error_answer("Sorry, the agent returned no answer.", question, state["session_id"])
        tries = len(answer.attempts)
        steps["content"] = "\n".join(lines) or "(no steps)"
        steps["metadata"] = {
            "title": f"Steps · {_plural(tries, 'attempt')} · {seconds(answer.latency_ms)}",
            "status": "done",
        }
        msgs.append({"role": "assistant", "content": answer_markdown(answer)})
        status = ""
        iid = None
        try:
            iid = self.agent.log(answer)  # the agent logs every answer, outages included (ok=False)
        except Exception as e:  # noqa: BLE001
            status = f"⚠️ This answer was not logged (feedback store: {e}); 👍/👎 cannot be stored for it."
        if iid is None and not status and self.store is not None and answer.status != "error":
            status = "⚠️ This answer was not logged to the feedback store; 👍/👎 cannot be stored for it."
        info = {"interaction_id": iid, "cypher": answer.cypher, "question": question}
        for i in (len(msgs) - 2, len(msgs) - 1):  # the steps message and the answer message
            state["answers"][i] = info
        state["busy"] = False
        yield msgs, state, rows_frame(answer.columns, answer.rows), status

    # --- 👍 / 👎 ------------------------------------------------------------------------------------------
    def like(self, state: dict[str, Any] | None, index: Any, liked: Any) -> dict[str, Any]:
        """Store (or undo) a thumb. Returns {status, show_panel, cypher, question, state}."""
        state = state or new_state()
        if isinstance(index, (list, tuple)):
            index = index[0]
        info = state["answers"].get(int(index)) if index is not None else None
        result = {"state": state, "show_panel": None, "cypher": None, "question": None, "status": ""}
        if state.get("busy"):
            result["status"] = "Wait for the answer to finish before rating it."
            return result
        if info is None:
            result["status"] = "That message is not an answer."
            return result
        iid = info["interaction_id"]
        if not iid:
            result["status"] = "⚠️ This answer was not logged, so feedback cannot be stored for it."
            return result
        previous = state["verdicts"].get(iid)
        verdict = "up" if liked is True else "down" if liked is False else None
        try:
            if previous and previous != verdict:
                self.store.withdraw_feedback(iid, previous)
                state["verdicts"].pop(iid, None)
            if verdict:
                self.store.add_feedback(Feedback(interaction_id=iid, verdict=verdict))
                state["verdicts"][iid] = verdict
        except CypherloopError as e:
            result["status"] = f"⚠️ Feedback not stored: {e}"
            return result
        except Exception as e:  # noqa: BLE001
            result["status"] = f"⚠️ Feedback not stored: {type(e).__name__}: {e}"
            return result
        if verdict == "down":
            state["target"] = info
            result.update(show_panel=True, cypher=info["cypher"], question=info["question"],
                          status="👎 stored. Fix the query below, run it, and save the correction.")
        else:
            if state.get("target") and state["target"].get("interaction_id") == iid:
                state["target"] = None
                result["show_panel"] = False
            result["status"] = (
                "👍 stored: this question and query will be reviewed for training."
                if verdict == "up"
                else "Feedback withdrawn."
            )
        return result

    # --- correction panel -----------------------------------------------------------------------------------
    def run_correction(self, cypher: str, then: str = "Save it if this is right.") -> tuple[Any, str]:
        """Run the edited query read-only (same gate as the agent). Returns (rows frame, status)."""
        cypher = (cypher or "").strip()
        if not cypher:
            return None, "Write a query first."
        if self.graph_store is None:
            return None, "⚠️ The graph database is unavailable."
        try:
            res = self.graph_store.query(cypher)
        except CypherloopError as e:
            return None, f"❌ {type(e).__name__}: {_short(getattr(e, 'db_message', None) or str(e), 600)}"
        except Exception as e:  # noqa: BLE001
            return None, f"❌ {type(e).__name__}: {_short(str(e), 600)}"
        n = len(res.rows)
        more = " (truncated)" if res.truncated else ""
        took = seconds(res.elapsed_ms)
        return rows_frame(res.columns, res.rows), f"✅ {_plural(n, 'row')}{more} in {took}. {then}"

    def save_correction(
        self, cypher: str, comment: str, state: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any]]:
        """store.add_correction for the 👎'd answer. Returns (status, state)."""
        state = state or new_state()
        target = state.get("target")
        if not target or not target.get("interaction_id"):
            return "Click 👎 on an answer first.", state
        if self.graph_store is None:
            return "⚠️ The graph database is unavailable.", state
        try:
            fb = self.store.add_correction(
                target["interaction_id"], cypher or "", self.graph_store, comment=comment or ""
            )
        except InvalidCorrection as e:
            return f"❌ Not saved: {e}", state
        except CypherloopError as e:
            return f"⚠️ Not saved: {e}", state
        except Exception as e:  # noqa: BLE001
            return f"⚠️ Not saved: {type(e).__name__}: {e}", state
        shown = self._review_id(fb.id) or fb.id
        note = "waiting for review in the Review tab" if fb.status == "pending" else fb.status
        return f"✅ Correction saved as {shown[:ID_CHARS]}, {note}.", state

    def _review_id(self, feedback_id: str) -> str | None:
        """The id the Review tab lists for a feedback record: its example's when it has one."""
        try:
            rows = self.store.feedback_rows(limit=0)
        except Exception:  # noqa: BLE001 - only the id shown in a message
            return None
        return next((r["example_id"] or r["id"] for r in rows if r["id"] == feedback_id), None)

    # --- review ---------------------------------------------------------------------------------------------
    def review_rows(self, status: str = "pending") -> Any:
        """Examples and stand-alone feedback with the given status ('all' for every status)."""
        import pandas as pd

        failing = status == "failing"
        wanted = None if status in (None, "", "all", "failing") else status
        rows: list[list[Any]] = []
        try:
            every = self.store.list_examples()
            all_feedback = [] if failing else self.store.feedback_rows(limit=0)
        except Exception as e:  # noqa: BLE001
            return pd.DataFrame(
                [[f"feedback store unavailable: {e}"] + [""] * (len(REVIEW_COLUMNS) - 1)],
                columns=REVIEW_COLUMNS,
            )
        examples = [e for e in every if wanted is None or e.status == wanted]
        if failing:  # examples the last schema re-check found failing: out of retrieval until reviewed
            examples = [e for e in examples if e.drift == "failing"]
        edited_into = {e.revised_from: e.id for e in every if e.revised_from}
        for e in sorted(examples, key=lambda x: -x.created_at):
            status_text = e.status
            if e.drift == "failing":
                status_text += f" · failing: {_short(e.drift_error, 120)}"
            if e.id in edited_into:
                status_text += f" · edited into {edited_into[e.id][:ID_CHARS]}"
            source = f"{e.source} · edited from {e.revised_from[:ID_CHARS]}" if e.revised_from else e.source
            rows.append(
                [e.id[:ID_CHARS], "example", status_text, source, e.graph, e.question, e.cypher,
                 _when(e.created_at)]
            )
        corrected = {f["interaction_id"] for f in all_feedback if f["corrected_cypher"]}
        for f in all_feedback:
            if wanted and f["status"] != wanted:
                continue
            if f["example_id"] or (not f["corrected_cypher"] and f["interaction_id"] in corrected):
                continue  # shown through its example, or superseded by a correction of the same answer
            kind = "👎" if f["verdict"] == "down" else "👍"
            rows.append(
                [
                    f["id"][:ID_CHARS],
                    f"feedback {kind}",
                    f["status"],
                    f["comment"] or "no correction",
                    f["graph"],
                    f["question"],
                    f["corrected_cypher"] or "",
                    _when(f["created_at"]),
                ]
            )
        return pd.DataFrame(rows, columns=REVIEW_COLUMNS)

    def review(self, item_id: str, decision: str, status_filter: str = "pending") -> tuple[Any, str]:
        """Approve/reject by id; returns (refreshed table, status)."""
        item_id = (item_id or "").strip()
        if not item_id:
            return self.review_rows(status_filter), "Select a row (or paste an id) first."
        status = "approved" if decision.startswith("approve") else "rejected"
        try:
            resolved = self.store.resolve_id(item_id)
            if status == "approved":  # an example failing on the live schema is re-checked, not just approved
                approve(self.store, resolved, self.graph_store, self.settings.query_timeout_s)
            else:
                self.store.review(resolved, status)
        except CypherloopError as e:
            return self.review_rows(status_filter), f"⚠️ {e}"
        return self.review_rows(status_filter), f"{item_id[:ID_CHARS]}: {status}."

    def approve_edited(self, item_id: str, question: str, cypher: str,
                       status_filter: str = "pending") -> tuple[Any, str]:
        """Approve the selected example as the reviewer edited it (``finetune.drift.approve_edited``: checked
        and run read-only first, the original kept and rejected). Returns (refreshed table, status)."""
        item_id = (item_id or "").strip()
        if not item_id:
            return self.review_rows(status_filter), "Select a row (or paste an id) first."
        if self.graph_store is None:
            return self.review_rows(status_filter), "⚠️ The graph database is unavailable."
        try:
            resolved = self.store.resolve_id(item_id)
            ex = approve_edited(self.store, resolved, question, cypher, self.graph_store,
                                self.settings.query_timeout_s)
        except InvalidCorrection as e:
            return self.review_rows(status_filter), f"❌ Not approved: {e}"
        except CypherloopError as e:
            return self.review_rows(status_filter), f"⚠️ {e}"
        if ex.revised_from:
            return self.review_rows(status_filter), (
                f"✅ {ex.id[:ID_CHARS]}: the edited example approved; the original "
                f"{ex.revised_from[:ID_CHARS]} stays in the log, rejected.")
        return self.review_rows(status_filter), f"{ex.id[:ID_CHARS]}: approved (unchanged)."

    # --- schema drift ---------------------------------------------------------------------------------------
    def drift_banner(self) -> str:
        """A warning while the live adapter was trained on another schema of this graph ("" otherwise)."""
        if self.graph_store is None:
            return ""
        try:
            text = adapter_drift(self.settings, self.graph_store)
        except CypherloopError as e:
            return f"⚠️ Could not compare the live adapter's schema with the graph: {e}"
        return f"⚠️ {text}" if text else ""

    # --- schema ---------------------------------------------------------------------------------------------
    def schema_tables(self) -> tuple[Any, Any, str]:
        """(labels frame, relationships frame, markdown with patterns or the error)."""
        import pandas as pd

        if self.graph_store is None:
            return None, None, "⚠️ The graph database is unavailable."
        try:
            schema = self.graph_store.schema(refresh=True)
            stats = self.graph_store.stats()
        except CypherloopError as e:
            return None, None, f"⚠️ {e}"
        except Exception as e:  # noqa: BLE001
            return None, None, f"⚠️ {type(e).__name__}: {e}"
        nodes, rels = stats.get("nodes", {}), stats.get("relationships", {})

        def props(ps: Any) -> str:
            return ", ".join(f"{p.name}: {p.type}" for p in ps)

        labels = pd.DataFrame(
            [[x.label, nodes.get(x.label, x.count), props(x.properties)] for x in schema.labels],
            columns=["label", "nodes", "properties"],
        )
        types = pd.DataFrame(
            [[x.type, rels.get(x.type, x.count), props(x.properties)] for x in schema.relationships],
            columns=["relationship", "count", "properties"],
        )
        name = getattr(self.graph_store, "name", "")
        n_nodes, n_rels = sum(v or 0 for v in nodes.values()), sum(v or 0 for v in rels.values())
        text = f"**Graph `{name}`** · {n_nodes} nodes · {n_rels} relationships\n\n"
        text += "\n".join(f"- `{p}`" for p in schema.patterns) or "(no relationship patterns)"
        return labels, types, text


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else ""


# --- the app
# ----------------------------------------------------------------------------------------------------

CSS = """
#chat .message-wrap pre { white-space: pre-wrap; }
#chat-status, #correction-status, #review-status, #review-edit-status, #training-status { min-height: 1.5em; }
"""


def build_app(agent: ChatAgent, store: FeedbackStore | None, settings: Settings, *,
              graph_store: GraphStore | None = None, training: TrainingHooks | None = None,
              title: str = "cypherloop") -> Any:
    """The Gradio Blocks: Chat, Review, Schema and Training tabs.

    ``agent`` streams step events ending in an ``answer`` event and logs answers (``ChatAgent``); ``store`` is
    the ``FeedbackStore``; ``graph_store`` defaults to ``agent.graph_store``; ``training`` is the Training
    tab's ``TrainingHooks`` (built from settings when None).
    """
    import gradio as gr

    ctrl = ChatController(agent, store, settings, graph_store)
    hooks = training if training is not None else TrainingHooks(settings)
    graph_name = getattr(ctrl.graph_store, "name", None) or settings.graph

    with gr.Blocks(title=title, analytics_enabled=False) as app:
        app.controller = ctrl  # for tests and embedding
        state = gr.State(new_state)
        gr.Markdown(f"## cypherloop · graph `{graph_name}`")
        banner = gr.Markdown(ctrl.drift_banner(), elem_id="drift-banner")
        app.load(ctrl.drift_banner, None, banner)
        with gr.Tabs(elem_id="tabs"):
            chat = _chat_tab(gr)
            review = _review_tab(gr)
            schema = _schema_tab(gr)
            with gr.Tab("Training", id="training-tab", elem_id="training-tab") as training_tab:
                training_view, training_outputs = build_training_tab(hooks, store)
        _wire_chat(gr, ctrl, state, chat, review)
        _wire_review(gr, ctrl, review)
        schema.refresh.click(ctrl.schema_tables, None, [schema.labels, schema.rels, schema.text])
        schema.tab.select(ctrl.schema_tables, None, [schema.labels, schema.rels, schema.text])
        training_tab.select(training_view, None, training_outputs)
    return app


def _chat_tab(gr: Any) -> SimpleNamespace:
    """The chat, the rows under it and the (hidden) correction panel."""
    c = SimpleNamespace()
    with gr.Tab("Chat", id="chat-tab", elem_id="chat-tab"):
        c.chatbot = gr.Chatbot(
            elem_id="chat", height=480, feedback_options=FEEDBACK_OPTIONS, buttons=["copy"], label="Chat"
        )
        with gr.Row():
            c.question = gr.Textbox(placeholder="Ask a question about the graph…", show_label=False, scale=8,
                                    elem_id="question", autofocus=True)
            c.ask = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
        c.status = gr.Markdown(elem_id="chat-status")
        # the correction panel opens right under the chat (above the rows), where the 👎 was clicked
        with gr.Column(visible=False, elem_id="correction-panel") as c.panel:
            gr.Markdown("### Correct the query")
            c.panel_question = gr.Markdown(elem_id="correction-question")
            c.code = gr.Code(
                label="Cypher", language=None, interactive=True, lines=4, elem_id="correction-code"
            )
            c.comment = gr.Textbox(label="Comment (optional)", elem_id="correction-comment")
            with gr.Row():
                c.run = gr.Button("Run", elem_id="run-correction")
                c.save = gr.Button("Save correction", variant="primary", elem_id="save-correction")
            c.correction_status = gr.Markdown(elem_id="correction-status")
            c.correction_rows = gr.Dataframe(
                label="Result", elem_id="correction-rows", interactive=False, wrap=True, visible=False
            )
        # hidden until an answer has rows: an empty Dataframe shows placeholder headers "1 2 3"
        c.rows = gr.Dataframe(label="Rows", elem_id="rows", interactive=False, wrap=True, visible=False)
    return c


def _review_tab(gr: Any) -> SimpleNamespace:
    """Examples and corrections waiting for a reviewer."""
    r = SimpleNamespace()
    with gr.Tab("Review", id="review-tab", elem_id="review-tab") as r.tab:
        gr.Markdown("Approve or reject verified examples and corrections before they can enter training. "
                    "Click a row to select it; to fix an example's question or Cypher, edit it below, run "
                    "it, and approve the edit (the original stays in the log, rejected).")
        with gr.Row():
            r.filter = gr.Dropdown(["pending", "approved", "rejected", "failing", "all"], value="pending",
                                   label="Show",
                                   elem_id="review-filter", scale=1)
            r.id = gr.Textbox(label="Selected id", elem_id="review-id", scale=3)
            r.approve = gr.Button("Approve", variant="primary", elem_id="review-approve", scale=1)
            r.reject = gr.Button("Reject", variant="stop", elem_id="review-reject", scale=1)
            r.refresh = gr.Button("Refresh", elem_id="review-refresh", scale=1)
        r.status = gr.Markdown(elem_id="review-status")
        with gr.Accordion("Edit the selected example", open=False, elem_id="review-edit") as r.edit:
            r.edit_question = gr.Textbox(label="Question", elem_id="review-edit-question")
            r.edit_code = gr.Code(label="Cypher", language=None, interactive=True, lines=3,
                                  elem_id="review-edit-code")
            with gr.Row():
                r.edit_run = gr.Button("Run", elem_id="review-edit-run")
                r.edit_approve = gr.Button("Approve edited", variant="primary", elem_id="review-edit-approve")
            r.edit_status = gr.Markdown(elem_id="review-edit-status")
            r.edit_rows = gr.Dataframe(label="Result", elem_id="review-edit-rows", interactive=False,
                                       wrap=True, visible=False)
        r.table = gr.Dataframe(headers=REVIEW_COLUMNS, elem_id="review-table", interactive=False, wrap=True,
                               column_widths=REVIEW_WIDTHS)
    return r


def _schema_tab(gr: Any) -> SimpleNamespace:
    """Labels, relationship types and patterns of the graph."""
    s = SimpleNamespace()
    with gr.Tab("Schema", id="schema-tab", elem_id="schema-tab") as s.tab:
        s.text = gr.Markdown(elem_id="schema-summary")
        with gr.Row():
            # fixed widths: the properties column wraps in full rather than being cut at the table's edge
            s.labels = gr.Dataframe(label="Node labels", elem_id="schema-labels", interactive=False,
                                    wrap=True, column_widths=["22%", "13%", "65%"])
            s.rels = gr.Dataframe(label="Relationship types", elem_id="schema-rels", interactive=False,
                                  wrap=True, column_widths=["30%", "13%", "57%"])
        s.refresh = gr.Button("Refresh", elem_id="schema-refresh")
    return s


def _wire_chat(
    gr: Any, ctrl: ChatController, state: Any, c: SimpleNamespace, review: SimpleNamespace
) -> None:
    """Ask, clear, 👍/👎 and the correction panel's Run / Save."""

    def on_submit(q, st):
        for msgs, st2, frame, status in ctrl.respond(q, st):
            shown = [dict(m) for m in msgs]  # a copy per yield: Gradio diffs successive values
            # no thumbs while the answer streams: a 👎 on a half-written answer has nothing to correct
            thumbs = [] if st2.get("busy") else list(FEEDBACK_OPTIONS)
            rows = gr.update() if frame is None else gr.update(value=frame, visible=len(frame.columns) > 0)
            yield gr.update(value=shown, feedback_options=thumbs), st2, rows, status, ""

    submit_outputs = [c.chatbot, state, c.rows, c.status, c.question]
    c.question.submit(on_submit, [c.question, state], submit_outputs)
    c.ask.click(on_submit, [c.question, state], submit_outputs)

    def on_clear(st):
        st = st or new_state()
        st.update(messages=[], answers={}, target=None, busy=False)
        return st, gr.update(visible=False), ""

    c.chatbot.clear(on_clear, [state], [state, c.panel, c.status])

    def on_like(st, data: gr.LikeData):
        r = ctrl.like(st, data.index, data.liked)
        panel_update = gr.update() if r["show_panel"] is None else gr.update(visible=r["show_panel"])
        code_update = gr.update(value=r["cypher"]) if r["cypher"] is not None else gr.update()
        q_update = gr.update(value=f"**Question:** {r['question']}") if r["question"] else gr.update()
        return (
            r["state"],
            panel_update,
            code_update,
            q_update,
            r["status"],
            ("" if r["show_panel"] else gr.update()),
        )

    c.chatbot.like(
        on_like, [state], [state, c.panel, c.code, c.panel_question, c.status, c.correction_status]
    )

    def on_run(code):
        frame, status = ctrl.run_correction(code)
        rows = gr.update(visible=False) if frame is None else gr.update(value=frame, visible=True)
        return rows, status

    c.run.click(on_run, [c.code], [c.correction_rows, c.correction_status])

    def on_save(code, note, st, flt):
        status, st2 = ctrl.save_correction(code, note, st)
        return status, st2, ctrl.review_rows(flt)

    c.save.click(
        on_save, [c.code, c.comment, state, review.filter], [c.correction_status, state, review.table]
    )


def _wire_review(gr: Any, ctrl: ChatController, r: SimpleNamespace) -> None:
    """Filter, refresh, select a row, approve / reject."""
    r.refresh.click(ctrl.review_rows, [r.filter], [r.table])
    r.filter.change(ctrl.review_rows, [r.filter], [r.table])
    r.tab.select(ctrl.review_rows, [r.filter], [r.table])

    def on_select(evt: gr.SelectData):
        row = evt.row_value if getattr(evt, "row_value", None) else None
        if not row:
            return (gr.update(),) * 6
        question, cypher = row[REVIEW_COLUMNS.index("question")], row[REVIEW_COLUMNS.index("cypher")]
        return row[0], question, cypher, "", gr.update(visible=False), gr.update(open=True)

    r.table.select(on_select, None, [r.id, r.edit_question, r.edit_code, r.edit_status, r.edit_rows, r.edit])
    r.approve.click(lambda i, f: ctrl.review(i, "approve", f), [r.id, r.filter], [r.table, r.status])
    r.reject.click(lambda i, f: ctrl.review(i, "reject", f), [r.id, r.filter], [r.table, r.status])

    def on_edit_run(code):
        frame, status = ctrl.run_correction(code, then="Approve the edit if this is right.")
        rows = gr.update(visible=False) if frame is None else gr.update(value=frame, visible=True)
        return rows, status

    r.edit_run.click(on_edit_run, [r.edit_code], [r.edit_rows, r.edit_status])
    r.edit_approve.click(ctrl.approve_edited, [r.id, r.edit_question, r.edit_code, r.filter],
                         [r.table, r.edit_status])


# --- command line
# --------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cypherloop ui", description="Open the Gradio chat over your graph (binds 127.0.0.1 by default)."
    )
    p.add_argument("--host", default=None, help="address to bind (default: settings.ui_host, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: settings.ui_port, 7860)")
    p.add_argument("--graph", default=None, help="graph name (default: settings.graph)")
    p.add_argument(
        "--home", type=Path, default=None, help="cypherloop home directory (default: settings.home)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Build the parts from settings and launch; prints the URL and serves until Ctrl+C."""
    args = _parser().parse_args(argv)
    quiet_libraries()
    settings = load_settings(home=args.home, graph=args.graph, ui_host=args.host, ui_port=args.port)
    store = ChromaFeedbackStore(settings)
    store.warm_up()
    agent = start_agent(settings, store)
    server = None if isinstance(agent, UnavailableAgent) else AskServer(agent, settings, "cypherloop ui")
    app = build_app(agent, store, settings)
    auth = None
    if settings.ui_username and settings.ui_password:
        auth = (settings.ui_username, settings.ui_password.get_secret_value())
    try:
        app.queue().launch(server_name=settings.ui_host, server_port=settings.ui_port, auth=auth,
                           prevent_thread_lock=True, quiet=True, css=CSS)
    except OSError as e:
        raise ConfigError(f"cannot listen on {settings.ui_host}:{settings.ui_port} ({e}); pass --port or set "
                          "CYPHERLOOP_UI_PORT") from e
    host = "127.0.0.1" if settings.ui_host in ("0.0.0.0", "::") else settings.ui_host
    login = " · login required" if auth else ""
    print(
        f"cypherloop UI: http://{host}:{app.server_port}/  (graph {settings.graph}, feedback in "
        f"{store.location}){login}"
    )
    if server is not None:
        server.start()
        print(f"`cypherloop ask` on this home and graph is answered here (127.0.0.1, pid {os.getpid()}).")
    print("Press Ctrl+C to stop.", flush=True)
    try:
        app.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.close()
        app.close()
        if agent.graph_store is not None:
            agent.graph_store.close()
    return 0


def start_agent(settings: Settings, store: FeedbackStore) -> ChatAgent:
    """The agent (``make_agent``), or an ``UnavailableAgent`` that says why when the graph or the model is not
    there: the app starts either way, so Review and Training stay usable."""
    try:
        graph_store = open_graph(settings)
    except CypherloopError as e:
        problem = f"the graph database is unavailable ({e})"
        print(f"warning: {problem}; the chat will say so")
        return UnavailableAgent(problem, None, settings.graph)
    try:
        agent = make_agent(settings, graph_store=graph_store, feedback_store=store,
                           example_pool=ExamplePool.for_settings(settings))
        agent.warm_up()  # on a GPU: the static decoding step compiled before the first question
        return agent
    except CypherloopError as e:
        problem = f"the model is unavailable ({e})"
        print(f"warning: {problem}; the chat will say so")
        return UnavailableAgent(problem, graph_store, settings.graph)
