"""Confidence and the cascade: the answer carries a confidence; a low one is said, and with an escalation
model configured the question goes to it over HTTP (a real local OpenAI-compatible server, the real
``openai`` client), its query checked and run the same way, its verified answer stored as a pending
example (real FalkorDB ``shop``, real Chroma)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent.core.prompt import build_messages
from agent.factory import make_agent as factory_make_agent
from agent.graph import CypherAgent, build_graph, confidence_of
from agent.models.base import ScriptedGenerator
from feedback_store.chroma import ChromaFeedbackStore

COUNT_CUSTOMERS = "MATCH (c:Customer) RETURN count(c) AS customers"
BROKEN = "MATCH (x:Nope) RETURN x"
QUESTION = "How many customers are there?"


class ChatServer:
    """A minimal OpenAI-compatible ``/v1/chat/completions`` endpoint on 127.0.0.1 that replies ``reply`` and
    records every request body."""

    def __init__(self, reply: str, model: str = "big-model") -> None:
        self.reply, self.model, self.requests = reply, model, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "body": body})
                if body.get("model") != outer.model:
                    return self._send(404, {"error": {"message": f"model {body.get('model')} not found"}})
                return self._send(200, {
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": outer.model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": outer.reply}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                })

            def _send(self, code, payload):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def escalating(settings, url, model="big-model", **extra):
    return settings.model_copy(update={"escalate_model": model, "escalate_base_url": url,
                                       "confidence_threshold": 0.5, **extra})


def agent_for(settings, shop, small, **kw):
    return factory_make_agent(settings, graph_store=shop, generator=small, **kw)


@pytest.mark.parametrize("agreement, calls, repairs, empty, expected", [
    (None, 1, 0, False, 0.75),      # one reply, first try: no agreement to measure
    (1.0, 1, 0, False, 1.0),        # every candidate agreed
    (0.4, 1, 0, False, 0.4),
    (None, 2, 0, False, 0.375),     # one correction round halves it
    (None, 3, 0, False, 0.188),
    (None, 1, 1, False, 0.6),       # a schema repair
    (None, 1, 0, True, 0.525),      # matched nothing
    (0.6, 2, 1, True, 0.168),
])
def test_confidence_from_agreement_and_repair_history(agreement, calls, repairs, empty, expected):
    value, doubts = confidence_of(agreement, calls, repairs, empty)
    assert value == expected
    assert bool(doubts) == (expected not in (0.75, 1.0))  # every discount is said in words


def test_confident_answers_stay_plain_and_unsure_ones_say_so(settings, shop):
    plain = agent_for(settings, shop, ScriptedGenerator([COUNT_CUSTOMERS])).ask(QUESTION)
    assert plain.confidence == 0.75 and "Low confidence" not in plain.answer and not plain.escalated
    repaired = agent_for(settings, shop, ScriptedGenerator([BROKEN, COUNT_CUSTOMERS])).ask(QUESTION)
    assert repaired.status == "ok" and repaired.rows == [[12]] and repaired.confidence == 0.375
    assert "Low confidence 0.38: the query needed 1 correction. Please check the query." in repaired.answer
    assert repaired.answered_by == "scripted" and not repaired.escalated
    off = agent_for(settings.model_copy(update={"confidence_threshold": 0.0}), shop,
                    ScriptedGenerator([BROKEN, COUNT_CUSTOMERS])).ask(QUESTION)
    assert off.confidence == 0.375 and "Low confidence" not in off.answer


def test_low_confidence_escalates_over_http_with_the_same_prompt(settings, shop, tmp_path):
    store = ChromaFeedbackStore(tmp_path / "chroma")
    with ChatServer("```cypher\n" + COUNT_CUSTOMERS + "\n```") as server:
        agent = agent_for(escalating(settings, server.url), shop,
                          ScriptedGenerator([BROKEN, COUNT_CUSTOMERS]), feedback_store=store)
        out = agent.ask(QUESTION)
        iid = agent.log(out)
    assert out.escalated and out.escalation_error is None
    assert out.status == "ok" and out.rows == [[12]] and out.cypher == COUNT_CUSTOMERS
    assert out.answered_by == out.model_version == "openai:big-model"
    assert out.confidence == 0.75 and "Low confidence" not in out.answer
    # one request, the agent's own prompt (same schema text and examples as the small model's first try)
    assert len(server.requests) == 1 and server.requests[0]["path"] == "/v1/chat/completions"
    schema_text = shop.schema().to_text(QUESTION, settings.schema_max_chars)
    assert server.requests[0]["body"]["messages"] == build_messages(QUESTION, schema_text, [], None)
    # logged with who answered; its verified answer waits for review as an example
    logged = store.get_interaction(iid)
    assert logged.answered_by == "openai:big-model" and logged.confidence == 0.75
    (ex,) = store.list_examples(graph="shop")
    assert (ex.source, ex.status, ex.cypher) == ("escalation", "pending", COUNT_CUSTOMERS)
    assert ex.interaction_id == iid
    assert ex.schema_fingerprint == shop.schema().fingerprint() and ex.result_fingerprint


def test_a_question_the_small_model_gave_up_on_goes_to_the_larger_one(settings, shop):
    with ChatServer(COUNT_CUSTOMERS) as server:
        out = agent_for(escalating(settings, server.url, max_attempts=2), shop,
                        ScriptedGenerator([BROKEN])).ask(QUESTION)
    assert out.status == "ok" and out.rows == [[12]] and out.escalated
    assert [a["error"] is None for a in out.attempts] == [False, False, True]


def test_a_failing_escalation_leaves_the_small_models_answer(settings, shop, tmp_path):
    store = ChromaFeedbackStore(tmp_path / "chroma")
    with ChatServer("MATCH (c:Customer) RETURN c.shoe_size AS s") as server:
        agent = agent_for(escalating(settings, server.url), shop,
                          ScriptedGenerator([BROKEN, COUNT_CUSTOMERS]), feedback_store=store)
        out = agent.ask(QUESTION)
        agent.log(out)
    assert out.escalated and "shoe_size" in out.escalation_error
    assert out.rows == [[12]] and out.answered_by == "scripted" and out.confidence == 0.375
    assert "openai:big-model's query failed too" in out.answer
    assert store.list_examples() == []  # nothing verified came back from it
    with ChatServer(BROKEN) as server:
        failed = agent_for(escalating(settings, server.url, max_attempts=1), shop,
                           ScriptedGenerator([BROKEN])).ask(QUESTION)
    assert failed.status == "failed" and failed.escalated and failed.confidence == 0.0


def test_an_unknown_escalation_model_is_one_clear_line_and_the_answer_stands(settings, shop):
    with ChatServer(COUNT_CUSTOMERS, model="other") as server:
        out = agent_for(escalating(settings, server.url), shop,
                        ScriptedGenerator([BROKEN, COUNT_CUSTOMERS])).ask(QUESTION)
    assert out.status == "ok" and out.rows == [[12]] and out.answered_by == "scripted"
    assert "model 'big-model' not found" in out.escalation_error


def test_no_escalation_model_no_escalation(settings, shop):
    agent = CypherAgent(settings, shop, ScriptedGenerator([BROKEN, COUNT_CUSTOMERS]), compiled=build_graph())
    out = agent.ask(QUESTION)
    assert agent.context.escalation is None and not out.escalated and out.confidence == 0.375
