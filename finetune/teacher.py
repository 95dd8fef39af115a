"""The seeds' teacher pipeline over any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama …).

    cypherloop data teacher --graph shop --themes 5 --questions-per-theme 20 --paraphrases 10

Four steps, as in the seeds:

1. **Themes and questions.** From the schema, the teacher names ``themes`` topics and writes
   ``questions_per_theme`` questions per theme (JSON mode where the server has it; the parser also
   reads plain lists).
2. **Cypher.** One query per question, asked with the project's own prompt
   (``agent.core.prompt.build_messages``) and cleaned with ``agent.cleanup.clean_cypher``.
3. **Execution.** Every query runs read-only against the graph (``GraphStore.query``) and is sorted
   into Pass / No data / Error; all of them go to the review file (``finetune.review``) as
   ``pending``: a person approves or rejects them with ``cypherloop data review``.
4. **Paraphrases.** ``paraphrases`` rewordings of every question whose query passed (or that a
   person approved), stored on the review item.

Every response is cached on disk under ``<out>/cache`` by a hash of (model, messages, parameters):
re-running resumes where it stopped and never pays for the same request twice. Rate limits (429)
and server errors (5xx) are retried with exponential backoff that honours ``Retry-After``; a rate
(requests per minute) and a concurrency limit keep a run inside the account's quota. Tokens and
cost are counted from the responses' ``usage`` and a small price table, and printed at the end.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from agent.cleanup import clean_cypher
from agent.core.cypher_text import normalize_question, says_nothing
from agent.core.errors import ConfigError, GraphError, ModelError
from agent.core.feedback import stable_id
from agent.core.files import atomic_write_text
from agent.core.prompt import build_messages
from agent.core.settings import Settings
from agent.graphdb.base import GraphStore
from finetune.review import ReviewFile, teacher_dir

PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    # USD per million tokens (input, output), list prices; longest matching prefix wins.
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o4-mini": (1.10, 4.40),
    "o3-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
}

JSON_SYSTEM = "You help build a training set for a text-to-Cypher model. Answer with JSON only."

THEMES_PROMPT = (
    "Here is the schema of a graph database:\n{schema}\n\n"
    "List {n} distinct themes (short noun phrases) that people who use this database would ask "
    'questions about. Answer as JSON: {{"themes": ["...", "..."]}}'
)
QUESTIONS_PROMPT = (
    "Here is the schema of a graph database:\n{schema}\n\n"
    'Write {n} different questions about the theme "{theme}" that one read-only Cypher query over '
    "this schema can answer. Ask them the way a person would, mixing lookups, filters, counts and "
    "other aggregations, rankings and questions that follow several relationships; use the example "
    'values from the schema where a question needs a name or a value. Answer as JSON: {{"questions": ["...", '
    '"..."]}}'
)
PARAPHRASE_PROMPT = (
    "Rewrite this question in {n} different ways a person might ask it. Keep its meaning and every "
    "name, number and date exactly as they are; vary wording and sentence structure.\n"
    "Question: {question}\nIt is answered by this Cypher query: {cypher}\n"
    'Answer as JSON: {{"paraphrases": ["...", "..."]}}'
)


# ============================================================================================
# Usage and cost
# ============================================================================================


def price_for(model: str) -> tuple[float, float] | None:
    """(input, output) USD per million tokens for a model name, or None when unknown."""
    best = None
    for prefix, price in PRICES_PER_MTOK.items():
        matches = model == prefix or model.startswith((prefix + "-", prefix + ":"))
        if matches and (best is None or len(prefix) > len(best[0])):
            best = (prefix, price)
    return best[1] if best else None


@dataclass
class Usage:
    """Requests, tokens and cost of one run (cached responses cost nothing and are counted apart)."""

    model: str
    http_calls: int = 0
    responses: int = 0
    cached: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    saved_prompt_tokens: int = 0
    saved_completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, usage: dict[str, Any] | None, cached: bool) -> None:
        p = int((usage or {}).get("prompt_tokens") or 0)
        c = int((usage or {}).get("completion_tokens") or 0)
        with self._lock:
            if cached:
                self.cached += 1
                self.saved_prompt_tokens += p
                self.saved_completion_tokens += c
            else:
                self.responses += 1
                self.prompt_tokens += p
                self.completion_tokens += c

    def count_call(self, retry: bool = False) -> None:
        with self._lock:
            self.http_calls += 1
            if retry:
                self.retries += 1

    @property
    def cost_usd(self) -> float | None:
        price = price_for(self.model)
        if price is None:
            return None
        return (self.prompt_tokens * price[0] + self.completion_tokens * price[1]) / 1e6

    @property
    def saved_usd(self) -> float | None:
        price = price_for(self.model)
        if price is None:
            return None
        return (self.saved_prompt_tokens * price[0] + self.saved_completion_tokens * price[1]) / 1e6

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        d["cost_usd"] = None if self.cost_usd is None else round(self.cost_usd, 4)
        d["saved_usd"] = None if self.saved_usd is None else round(self.saved_usd, 4)
        return d

    def summary(self) -> str:
        cost = "unknown price" if self.cost_usd is None else f"${self.cost_usd:.4f}"
        saved = "" if self.saved_usd is None or not self.cached else f" (cache saved ${self.saved_usd:.4f})"
        return (f"teacher {self.model}: {self.responses} responses from {self.http_calls} HTTP calls "
                f"({self.retries} retries), {self.cached} from cache; tokens in {self.prompt_tokens:,} / out "
                f"{self.completion_tokens:,}; cost {cost}{saved}")


# ============================================================================================
# Cached, retrying, rate-limited client
# ============================================================================================


class _RateLimiter:
    """At most ``rpm`` request starts per minute (evenly spaced), shared by all threads."""

    def __init__(self, rpm: float | None, sleep: Callable[[float], None]) -> None:
        self.interval = 60.0 / rpm if rpm else 0.0
        self.sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self.sleep(start - now)


def cache_key(model: str, messages: Sequence[dict[str, str]], params: dict[str, Any]) -> str:
    blob = json.dumps(
        {"model": model, "messages": list(messages), "params": params}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class TeacherClient:
    """Chat completions through the ``openai`` client: cached on disk, retried, rate-limited, accounted."""

    def __init__(
        self,
        settings: Settings,
        cache_dir: Path,
        *,
        model: str | None = None,
        http_client: Any = None,
        max_retries: int = 6,
        base_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        rpm: float | None = None,
        timeout_s: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
        if not key:
            where = settings.openai_base_url or "https://api.openai.com/v1"
            raise ConfigError(
                f"OPENAI_API_KEY is not set: the teacher pipeline calls {where}. Set OPENAI_API_KEY "
                "(any non-empty value for a local server such as Ollama or vLLM) and OPENAI_BASE_URL for "
                "a non-OpenAI endpoint"
            )
        from openai import OpenAI

        self.model = model or settings.teacher_model
        self.base_url = settings.openai_base_url
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.max_retries, self.base_delay_s, self.max_delay_s = max_retries, base_delay_s, max_delay_s
        self.sleep = sleep
        self.usage = Usage(self.model)
        self._limiter = _RateLimiter(rpm, sleep)
        self._json_ok = True
        self._client = OpenAI(api_key=key, base_url=settings.openai_base_url or None, max_retries=0,
                              timeout=timeout_s, http_client=http_client)

    # --- cache ----------------------------------------------------------------------------------
    def _cache_path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def _cached(self, key: str) -> dict[str, Any] | None:
        path = self._cache_path(key)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None  # a torn write from a killed run: ask again

    def _store(self, key: str, record: dict[str, Any]) -> None:
        path = self._cache_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(record, ensure_ascii=False))

    # --- one request ------------------------------------------------------------------------------
    def complete(
        self,
        messages: Sequence[dict[str, str]],
        *,
        json_mode: bool = False,
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> str:
        """The assistant's text for ``messages`` (from the cache when this exact request was made before)."""
        params: dict[str, Any] = {"temperature": temperature}
        if max_tokens:
            params["max_tokens"] = max_tokens
        if json_mode:
            params["response_format"] = {"type": "json_object"}
        key = cache_key(self.model, messages, params)
        hit = self._cached(key)
        if hit is not None:
            self.usage.record(hit.get("usage"), cached=True)
            return hit.get("content") or ""
        send = dict(params)
        if json_mode and not self._json_ok:
            send.pop("response_format")
        body = self._call(list(messages), send)
        choice = (body.choices or [None])[0]
        content = (choice.message.content if choice and choice.message else None) or ""
        usage = body.usage.model_dump() if getattr(body, "usage", None) is not None else {}
        self.usage.record(usage, cached=False)
        self._store(
            key,
            {
                "model": self.model,
                "messages": list(messages),
                "params": params,
                "content": content,
                "usage": {
                    "prompt_tokens": usage.get("prompt_tokens"),
                    "completion_tokens": usage.get("completion_tokens"),
                },
                "response_id": getattr(body, "id", None),
                "created_at": time.time(),
            },
        )
        return content

    def _call(self, messages: list[dict[str, str]], params: dict[str, Any]) -> Any:
        import openai

        attempt = 0
        while True:
            self._limiter.wait()
            try:
                self.usage.count_call(retry=attempt > 0)
                return self._client.chat.completions.create(model=self.model, messages=messages, **params)
            except openai.AuthenticationError as e:
                raise ConfigError(f"the teacher endpoint refused OPENAI_API_KEY ({_short(e)})") from e
            except openai.NotFoundError as e:
                raise ConfigError(f"teacher model {self.model!r} not found at {self.base_url or 'OpenAI'}; "
                                  f"set CYPHERLOOP_TEACHER_MODEL ({_short(e)})") from e
            except openai.BadRequestError as e:
                if "response_format" in params and "response_format" in str(e).lower():
                    self._json_ok = False  # the server has no JSON mode: the tolerant parser copes
                    params = {k: v for k, v in params.items() if k != "response_format"}
                    continue
                raise ModelError(f"the teacher endpoint rejected a request: {_short(e)}") from e
            except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError,
                    openai.APITimeoutError, openai.APIStatusError) as e:
                status = getattr(e, "status_code", None)
                if (
                    isinstance(e, openai.APIStatusError)
                    and status is not None
                    and status != 429
                    and status < 500
                ):
                    raise ModelError(f"the teacher endpoint answered HTTP {status}: {_short(e)}") from e
                if attempt >= self.max_retries:
                    raise ModelError(
                        f"the teacher endpoint kept failing after {attempt + 1} tries: {_short(e)}"
                    ) from e
                delay = _retry_after(e)
                if delay is None:
                    delay = min(self.max_delay_s, self.base_delay_s * (2 ** attempt))
                self.sleep(delay)
                attempt += 1

    # --- many requests ------------------------------------------------------------------------------
    def complete_many(self, requests: Sequence[dict[str, Any]], *, concurrency: int = 4, desc: str = "",
                      progress: bool = True) -> list[str]:
        """``complete(**request)`` for each request, ``concurrency`` at a time, in order."""
        if not requests:
            return []
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(requests), desc=desc, unit="req")
        try:
            def one(req: dict[str, Any]) -> str:
                out = self.complete(**req)
                if bar is not None:
                    bar.update(1)
                return out

            if concurrency <= 1:
                return [one(r) for r in requests]
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                return list(pool.map(one, requests))
        finally:
            if bar is not None:
                bar.close()


def _short(e: Exception) -> str:
    text = str(e).replace("\n", " ")
    return text if len(text) <= 200 else text[:200] + "…"


def _retry_after(e: Exception) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` / ``retry-after``), if it said."""
    response = getattr(e, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


# ============================================================================================
# Parsing the teacher's answers
# ============================================================================================

_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)]|\(\d+\))\s*")


def parse_list(text: str, key: str) -> list[str]:
    """A list of strings from a reply: JSON ({key: [...]}, a bare list, JSON inside prose) or numbered
    lines."""
    for candidate in _json_candidates(text):
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        items = _list_from(data, key)
        if items is not None:
            return items
    lines = []
    for line in (text or "").splitlines():
        line = line.strip().strip("`")
        if not line or line.endswith(":") or line.startswith(("{", "}", "[", "]")):
            continue
        line = _BULLET.sub("", line).strip().strip('"').strip()
        if line:
            lines.append(line)
    return lines


def _json_candidates(text: str) -> list[str]:
    text = (text or "").strip()
    fenced = re.findall(r"```(?:json)?\s*(.*?)```", text, re.S)
    out = [text, *fenced]
    for opener, closer in (("{", "}"), ("[", "]")):
        i, j = text.find(opener), text.rfind(closer)
        if 0 <= i < j:
            out.append(text[i: j + 1])
    return out


def _list_from(data: Any, key: str) -> list[str] | None:
    if isinstance(data, dict):
        if isinstance(data.get(key), list):
            data = data[key]
        else:
            lists = [v for v in data.values() if isinstance(v, list)]
            if not lists:
                return None
            data = lists[0]
    if not isinstance(data, list):
        return None
    out = []
    for item in data:
        if isinstance(item, str):
            out.append(item.strip())
        elif isinstance(item, dict):
            text = next(
                (
                    item[k]
                    for k in ("question", "theme", "name", "text", "paraphrase")
                    if isinstance(item.get(k), str)
                ),
                None,
            )
            if text:
                out.append(text.strip())
    return [x for x in out if x]


# ============================================================================================
# The pipeline
# ============================================================================================


@dataclass
class TeacherConfig:
    """Knobs of one teacher run (the seeds' numbers by default)."""

    themes: int = 5
    questions_per_theme: int = 20
    paraphrases: int = 10
    concurrency: int = 4
    rpm: float | None = None
    max_retries: int = 6
    question_temperature: float = 0.7
    cypher_temperature: float = 0.0
    paraphrase_temperature: float = 0.7
    json_mode: bool = True
    model: str | None = None


@dataclass
class TeacherResult:
    out_dir: Path
    review_path: Path
    counts: dict[str, int]
    questions: int
    paraphrases: int
    usage: Usage

    def summary(self) -> str:
        c = self.counts
        return (
            f"{self.questions} questions: {c.get('pass', 0)} pass, {c.get('no_data', 0)} no data, "
            f"{c.get('error', 0)} error; {self.paraphrases} paraphrases\nreview file: {self.review_path}\n"
            f"{self.usage.summary()}"
        )


def classify(graph: GraphStore, cypher: str, timeout_s: float, max_rows: int) -> tuple[str, int, str | None]:
    """Run a query read-only: ('pass' | 'no_data' | 'error', row count, the database's message)."""
    if not cypher.strip():
        return "error", 0, "the reply held no Cypher query"
    try:
        res = graph.query(cypher, timeout_s=timeout_s, max_rows=max_rows)
    except GraphError as e:
        return "error", 0, e.db_message or str(e)
    if not res.rows or says_nothing(res.rows):
        return "no_data", len(res.rows), None
    return "pass", len(res.rows), None


def run_teacher(
    settings: Settings,
    graph: GraphStore,
    config: TeacherConfig | None = None,
    out_dir: Path | None = None,
    *,
    http_client: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: bool = True,
) -> TeacherResult:
    """The four steps; returns counts and usage. Safe to re-run: it resumes from the cache."""
    cfg = config or TeacherConfig()
    out = Path(out_dir) if out_dir else teacher_dir(settings, graph.name)
    out.mkdir(parents=True, exist_ok=True)
    client = TeacherClient(settings, out / "cache", model=cfg.model, http_client=http_client,
                           max_retries=cfg.max_retries, rpm=cfg.rpm, sleep=sleep)
    schema_text = graph.schema_text()
    # 1. themes, then questions per theme
    asked = _questions(client, cfg, schema_text, progress)
    # 2. one Cypher query per question, with the serving prompt
    answers = client.complete_many(
        [{"messages": build_messages(q, schema_text), "temperature": cfg.cypher_temperature}
         for _, q in asked],
        concurrency=cfg.concurrency, desc="cypher", progress=progress)
    # 3. run every query read-only and sort it
    now = time.time()
    items = [_review_item(settings, graph, client.model, theme, question, clean_cypher(raw), now)
             for (theme, question), raw in zip(asked, answers, strict=True)]
    review = ReviewFile(out)
    merged = review.merge(items)
    # 4. paraphrases of what passed (or a person approved)
    para_total = _paraphrase(client, cfg, review, merged, graph.name, progress)
    counts = {"pass": 0, "no_data": 0, "error": 0}
    for x in items:
        counts[x["result"]] += 1
    atomic_write_text(out / "usage.json", json.dumps(client.usage.to_dict(), indent=2))
    return TeacherResult(out, review.path, counts, len(items), para_total, client.usage)


def _json_request(cfg: TeacherConfig, prompt: str, temperature: float) -> dict[str, Any]:
    return {"messages": [{"role": "system", "content": JSON_SYSTEM}, {"role": "user", "content": prompt}],
            "json_mode": cfg.json_mode, "temperature": temperature}


def _questions(client: TeacherClient, cfg: TeacherConfig, schema_text: str,
               progress: bool) -> list[tuple[str, str]]:
    """(theme, question) pairs: the teacher names themes, then writes questions per theme (de-duplicated)."""
    text = client.complete(**_json_request(cfg, THEMES_PROMPT.format(schema=schema_text, n=cfg.themes),
                                           cfg.question_temperature))
    themes = _unique(parse_list(text, "themes"))[: cfg.themes]
    if not themes:
        raise ModelError(f"the teacher returned no themes (reply: {text[:200]!r})")
    prompts = [QUESTIONS_PROMPT.format(schema=schema_text, n=cfg.questions_per_theme, theme=t)
               for t in themes]
    replies = client.complete_many([_json_request(cfg, q, cfg.question_temperature) for q in prompts],
                                   concurrency=cfg.concurrency, desc="questions", progress=progress)
    asked: list[tuple[str, str]] = []
    seen: set[str] = set()
    for theme, reply in zip(themes, replies, strict=True):
        for q in parse_list(reply, "questions")[: cfg.questions_per_theme]:
            if normalize_question(q) and normalize_question(q) not in seen:
                seen.add(normalize_question(q))
                asked.append((theme, q))
    return asked


def _review_item(settings: Settings, graph: GraphStore, model: str, theme: str, question: str, cypher: str,
                 created_at: float) -> dict[str, Any]:
    """A review file item: the query run read-only and sorted into pass / no_data / error."""
    result, rows, error = classify(graph, cypher, settings.query_timeout_s, settings.max_rows)
    return {"id": stable_id("teacher", graph.name, normalize_question(question))[:16], "graph": graph.name,
            "theme": theme, "question": question, "cypher": cypher, "result": result, "error": error,
            "row_count": rows, "status": "pending", "paraphrases": [], "model": model,
            "created_at": created_at, "reviewed_at": None}


def _paraphrase(client: TeacherClient, cfg: TeacherConfig, review: ReviewFile, merged: list[dict[str, Any]],
                graph: str, progress: bool) -> int:
    """Paraphrases of every item that passed (or a person approved), stored on the items; returns how many."""
    todo = [x for x in merged if x.get("graph") == graph and x.get("status") != "rejected"
            and (x.get("result") == "pass" or x.get("status") == "approved")]
    if cfg.paraphrases <= 0 or not todo:
        return 0
    prompts = [PARAPHRASE_PROMPT.format(n=cfg.paraphrases, question=x["question"], cypher=x["cypher"])
               for x in todo]
    replies = client.complete_many([_json_request(cfg, q, cfg.paraphrase_temperature) for q in prompts],
                                   concurrency=cfg.concurrency, desc="paraphrases", progress=progress)
    updates, total = {}, 0
    for item, reply in zip(todo, replies, strict=True):
        own = normalize_question(item["question"])
        paras = [p for p in _unique(parse_list(reply, "paraphrases")) if normalize_question(p) != own]
        updates[item["id"]] = {"paraphrases": paras[: cfg.paraphrases]}
        total += len(paras[: cfg.paraphrases])
    review.update(updates)
    return total


def _unique(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for x in items:
        k = normalize_question(x)
        if k and k not in seen:
            seen.add(k)
            out.append(x)
    return out
