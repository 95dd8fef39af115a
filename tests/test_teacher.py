"""The teacher pipeline against recorded OpenAI responses at the HTTP boundary (no network), on ``shop``.

openai 3.x sends through ``httpx2``; a ``httpx2.MockTransport`` passed as ``http_client=`` answers each
chat-completions request with the recorded body whose ``match`` text appears in the request.
Recordings: tests/data/teacher_responses/{themes,questions,cypher,paraphrases}.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest
from pydantic import SecretStr

from agent.core.errors import ConfigError, ModelError
from finetune.review import ReviewFile
from finetune.teacher import TeacherClient, TeacherConfig, parse_list, price_for, run_teacher

RECORDINGS = Path(__file__).parent / "data" / "teacher_responses"
CONFIG = TeacherConfig(themes=2, questions_per_theme=4, paraphrases=3, concurrency=2)


class Recorded:
    """A MockTransport handler serving the recordings; counts requests; optional scripted failures first."""

    def __init__(self, failures: list[httpx2.Response] | None = None) -> None:
        self.steps = {
            name: json.loads((RECORDINGS / f"{name}.json").read_text())
            for name in ("themes", "questions", "cypher", "paraphrases")
        }
        self.failures = list(failures or [])
        self.requests: list[dict] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        assert request.url.path.endswith("/chat/completions"), request.url
        assert request.headers["authorization"] == "Bearer sk-test"
        payload = json.loads(request.content)
        self.requests.append(payload)
        if self.failures:
            return self.failures.pop(0)
        system, user = payload["messages"][0]["content"], payload["messages"][-1]["content"]
        if "distinct themes" in user:
            step = "themes"
        elif "questions about the theme" in user:
            step = "questions"
        elif user.startswith("Rewrite this question"):
            step = "paraphrases"
            user = user.split("Question: ", 1)[1].split("\n", 1)[0]
        elif system.startswith("You write Cypher queries"):
            step = "cypher"
        else:
            raise AssertionError(f"unexpected request: {user[:80]}")
        for rec in self.steps[step]:
            if rec["match"] in user:
                return httpx2.Response(200, json=rec["response"])
        raise AssertionError(f"no recording for {step}: {user[:80]}")

    def client(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self))


class NoNetwork:
    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        raise AssertionError("a resumed run must not make HTTP calls")

    def client(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self))


@pytest.fixture
def tsettings(settings):
    return settings.model_copy(
        update={"openai_api_key": SecretStr("sk-test"), "openai_base_url": None, "teacher_model": "gpt-4o"}
    )


def _run(tsettings, shop, out, handler, sleeps=None):
    return run_teacher(tsettings, shop, CONFIG, out, http_client=handler.client(), progress=False,
                       sleep=(sleeps.append if sleeps is not None else lambda s: None))


def test_pipeline_sorts_pass_no_data_error(tsettings, shop, tmp_path):
    rec = Recorded()
    result = _run(tsettings, shop, tmp_path, rec)
    assert result.counts == {"pass": 3, "no_data": 2, "error": 2}
    items = {x["question"]: x for x in ReviewFile(tmp_path).load()}
    assert len(items) == 7 and all(x["status"] == "pending" for x in items.values())
    assert items["Which customers live in Berlin?"]["result"] == "pass"
    # fence stripped
    assert (
        items["Which customers live in Berlin?"]["cypher"]
        == "MATCH (c:Customer {city: 'Berlin'}) RETURN c.name"
    )
    # "Cypher:" prefix stripped
    assert items["How many customers are there per country?"]["cypher"].startswith("MATCH")
    assert items["Which customers live in Atlantis?"]["result"] == "no_data"
    assert items["What is the total of order O99?"]["result"] == "no_data"
    assert items["Delete the cancelled orders."]["result"] == "error"  # refused by the read-only gate
    assert items["List products with their categories."]["result"] == "error"
    assert items["List products with their categories."]["error"]
    # the graph is untouched: the teacher's DELETE never ran
    assert shop.query("MATCH (o:Order {status: 'cancelled'}) RETURN count(o)").rows[0][0] > 0
    # paraphrases only for passing items; the question itself is not its own paraphrase
    assert items["Which customers live in Berlin?"]["paraphrases"] == [
        "Who are our customers in Berlin?",
        "List the customers based in Berlin.",
        "Show me every customer from Berlin.",
    ]
    # a plain list
    assert items["Which products did Alice Meyer order?"]["paraphrases"][0] == "What has Alice Meyer bought?"
    assert items["Which customers live in Atlantis?"]["paraphrases"] == []
    assert result.paraphrases == 9
    # 1 themes + 2 question lists + 7 queries + 3 paraphrase requests, all answered once
    assert len(rec.requests) == 13
    assert (
        rec.requests[0]["response_format"] == {"type": "json_object"} and rec.requests[0]["model"] == "gpt-4o"
    )
    u = result.usage
    assert (u.http_calls, u.responses, u.cached, u.retries) == (13, 13, 0, 0)
    assert u.prompt_tokens == 412 + 431 + 429 + (520 + 520 + 522 + 524 + 521 + 519 + 520) + 160 + 165 + 170
    assert u.cost_usd == pytest.approx((u.prompt_tokens * 2.5 + u.completion_tokens * 10.0) / 1e6)
    assert json.loads((tmp_path / "usage.json").read_text())["responses"] == 13
    assert "cost $" in u.summary()


def test_second_run_resumes_from_cache_without_http_calls(tsettings, shop, tmp_path):
    first = _run(tsettings, shop, tmp_path, Recorded())
    review = ReviewFile(tmp_path)
    berlin = next(x for x in review.load() if "Berlin" in x["question"])
    review.set_status([berlin["id"][:8]], "approved")
    again = _run(tsettings, shop, tmp_path, NoNetwork())
    assert again.usage.http_calls == 0 and again.usage.cached == 13
    assert again.counts == first.counts
    assert again.usage.saved_prompt_tokens == first.usage.prompt_tokens and again.usage.cost_usd == 0
    after = {x["id"]: x for x in ReviewFile(tmp_path).load()}
    assert after[berlin["id"]]["status"] == "approved"  # a person's decision survives a re-run
    assert len(after) == 7


def test_retries_a_429_honouring_retry_after_then_succeeds(tsettings, shop, tmp_path):
    limited = httpx2.Response(
        429,
        headers={"retry-after": "0.25"},
        json={"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
    )
    rec = Recorded(failures=[limited])
    sleeps: list[float] = []
    result = _run(tsettings, shop, tmp_path, rec, sleeps)
    assert sleeps == [0.25]
    assert result.usage.retries == 1 and result.usage.http_calls == 14 and result.usage.responses == 13
    assert result.counts["pass"] == 3


def test_server_errors_back_off_exponentially_then_give_up(tsettings, tmp_path):
    rec = Recorded(failures=[httpx2.Response(503, json={"error": {"message": "overloaded"}})] * 3)
    sleeps: list[float] = []
    client = TeacherClient(tsettings, tmp_path, http_client=rec.client(), max_retries=2, sleep=sleeps.append)
    with pytest.raises(ModelError, match="kept failing after 3 tries"):
        client.complete([{"role": "user", "content": "List 2 distinct themes"}])
    assert sleeps == [1.0, 2.0]


def test_missing_api_key_is_a_clear_config_error(settings, shop, tmp_path, monkeypatch, capsys):
    no_key = settings.model_copy(update={"openai_api_key": None})
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        run_teacher(no_key, shop, CONFIG, tmp_path, http_client=NoNetwork().client(), progress=False)
    from ui.cli import main

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    code = main(
        ["data", "teacher", "--home", str(settings.home), "--graph", "shop", "--out", str(tmp_path / "t")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == ConfigError.exit_code and len(err) == 1 and "OPENAI_API_KEY" in err[0]


def test_review_cli_lists_approves_rejects(tsettings, shop, tmp_path, capsys):
    from ui.cli import main

    _run(tsettings, shop, tmp_path, Recorded())
    f = ["data", "review", "--file", str(tmp_path / "review.jsonl")]
    assert main([*f, "list", "--result", "error"]) == 0
    out = capsys.readouterr().out
    assert "Delete the cancelled orders." in out and "2 of 2 items" in out
    items = ReviewFile(tmp_path).load()
    atlantis = next(x for x in items if "Atlantis" in x["question"])
    delete = next(x for x in items if x["question"].startswith("Delete"))
    assert main([*f, "approve", atlantis["id"][:6]]) == 0
    assert main([*f, "reject", delete["id"]]) == 0
    assert main([*f, "approve-all-pass"]) == 0
    assert "approved 3 passing" in capsys.readouterr().out
    status = {x["question"]: x["status"] for x in ReviewFile(tmp_path).load()}
    assert status["Which customers live in Atlantis?"] == "approved"
    assert status["Delete the cancelled orders."] == "rejected"
    assert status["Which customers live in Berlin?"] == "approved"
    assert status["What is the total of order O99?"] == "pending"
    assert main([*f, "approve", "zzzz"]) != 0
    assert "no review item" in capsys.readouterr().err
    assert main([*f, "stats"]) == 0
    assert "approved 4" in capsys.readouterr().out


@pytest.mark.parametrize(
    "reply, expected",
    [
        ('{"questions": ["a?", "b?"]}', ["a?", "b?"]),
        ('["a?", "b?"]', ["a?", "b?"]),
        ('Sure!\n```json\n{"questions": [{"question": "a?"}, {"question": "b?"}]}\n```', ["a?", "b?"]),
        ("Here you go:\n1. a?\n2) b?\n- c?", ["a?", "b?", "c?"]),
        ('{"items": ["a?"]}', ["a?"]),
    ],
)
def test_tolerant_parser(reply, expected):
    assert parse_list(reply, "questions") == expected


def test_price_table():
    assert price_for("gpt-4o") == price_for("gpt-4o-2024-08-06") == (2.5, 10.0)
    assert price_for("gpt-4o-mini") == (0.15, 0.6)
    assert price_for("llama3.1:8b") is None
