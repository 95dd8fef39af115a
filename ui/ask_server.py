"""A process that has its model loaded answers ``cypherloop ask`` for the same home and graph.

A fresh ``cypherloop ask`` process pays for Python, its imports (langgraph, transformers, torch, chromadb)
and the model's load before the question (docs/BENCHMARKS.md 7): several times what the question costs a
process that answered before. So a long-running process serves questions over localhost, as ``ollama``'s
CLI talks to its server: ``cypherloop serve`` (or the chat, ``cypherloop ui``) listens on 127.0.0.1 at a
port the system picks and writes where, with a fresh random token, to

    <home>/serve/<graph>-<hash>.json    {"host", "port", "token", "pid", "process", "settings"}   mode 0600

in the private (0700) home. ``cypherloop ask`` reads that file first (it imports none of the heavy libraries
for it), and when a server for its home and graph answers, with the same settings, the question goes there;
otherwise (no file, nobody listening, other settings, a file not private to this user) it answers in its
own process as before. The answer says which process answered (``served_by``).

Secure by default: the socket binds 127.0.0.1 only; every request carries the token
(``Authorization: Bearer``), compared in constant time; the client only trusts an endpoint file owned by
its own user and readable by nobody else; the request body is bounded. The server answers questions only
(``POST /ask``): the agent's read-only graph access is the same as in-process.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import os
import re
import secrets
import stat
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.core.errors import CypherloopError, DataError
from agent.core.files import atomic_write_text
from agent.core.settings import Settings

if TYPE_CHECKING:
    from agent.graph import CypherAgent

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
CONNECT_TIMEOUT_S = 2.0
"""A server that does not accept within this is treated as absent (the answer itself may take longer)."""
MAX_BODY = 64 * 1024
PROCESS_FIELDS = ("ui_host", "ui_port", "ui_username", "ui_password")
"""Settings of the chat's own web page: they differ between processes that answer alike."""


def endpoint_file(settings: Settings) -> Path:
    """Where the server for ``settings.graph`` on this home says where it listens."""
    graph = settings.graph
    safe = re.sub(r"[^\w.-]+", "_", graph)[:64]
    return settings.path("serve", f"{safe}-{hashlib.sha256(graph.encode()).hexdigest()[:8]}.json")


def settings_key(settings: Settings) -> str:
    """A digest of every setting that changes an answer (secrets included, hashed): a server answers a client
    only when both computed the same."""
    values = {}
    for name in type(settings).model_fields:
        if name in PROCESS_FIELDS:
            continue
        value = getattr(settings, name)
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        values[name] = str(value)
    values["home"] = str(settings.home_dir)
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    token: str
    pid: int
    process: str
    settings: str

    def describe(self) -> str:
        return f"{self.process} (pid {self.pid})"


def read_endpoint(settings: Settings) -> Endpoint | None:
    """The endpoint file's server, when the file exists, is this user's own and private, and parses."""
    path = endpoint_file(settings)
    try:
        st = path.stat()
        if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
            log.warning("ignoring %s: not private to this user (mode %o)", path, stat.S_IMODE(st.st_mode))
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return Endpoint(str(data["host"]), int(data["port"]), str(data["token"]), int(data["pid"]),
                        str(data["process"]), str(data["settings"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.debug("unreadable endpoint file %s: %s", path, e)
        return None


class ServerRefused(CypherloopError):
    """The server answered, but not the question (other settings, a wrong token)."""


def ask_server(settings: Settings, question: str, *,
               log_answer: bool) -> tuple[dict[str, Any], Endpoint] | None:
    """The answer (``AgentAnswer.to_dict()``) from the server for this home and graph, with who answered;
    None when there is none to ask (no endpoint file, nobody listening)."""
    ep = read_endpoint(settings)
    if ep is None:
        return None
    conn = http.client.HTTPConnection(ep.host, ep.port, timeout=CONNECT_TIMEOUT_S)
    try:
        try:
            conn.connect()
        except OSError:
            return None  # gone (killed, or its machine restarted): its file stays until the next serve
        conn.sock.settimeout(None)  # the question may take as long as it takes
        body = json.dumps({"question": question, "log": log_answer, "settings": settings_key(settings)})
        conn.request("POST", "/ask", body=body.encode(), headers={
            "Authorization": f"Bearer {ep.token}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        data = json.loads(resp.read() or b"{}")
    except (OSError, http.client.HTTPException, ValueError):
        return None  # died mid-answer: the question is read-only, so asking again here is safe
    finally:
        conn.close()
    if resp.status == 409:
        raise ServerRefused(f"{ep.describe()} answers this graph with other settings")
    if resp.status != 200:
        raise ServerRefused(f"{ep.describe()} refused the question ({resp.status}: {data.get('error', '')})")
    return data["answer"], ep


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "cypherloop"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("serve: " + format, *args)

    def _reply(self, status: int, data: dict[str, Any]) -> None:
        body = json.dumps(data, ensure_ascii=False, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._reply(404, {"error": "POST /ask only"})

    def do_POST(self) -> None:  # noqa: N802
        owner = self.server.owner
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {owner.token}".encode()):
            self._reply(401, {"error": "wrong or missing token"})
            return
        if self.path != "/ask":
            self._reply(404, {"error": "POST /ask only"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                raise DataError(f"a request body of 1 to {MAX_BODY} bytes")
            req = json.loads(self.rfile.read(length))
            question = req["question"]
            if not isinstance(question, str):
                raise DataError("question must be a string")
        except (ValueError, KeyError, TypeError, DataError) as e:
            self._reply(400, {"error": f"bad request: {e}"})
            return
        if req.get("settings") != owner.key:
            self._reply(409, {"error": "other settings"})
            return
        try:
            with owner.lock:  # one question at a time, as the model serves them
                answer = owner.agent.ask(question)
        except Exception as e:  # noqa: BLE001 - the client answers in its own process instead
            log.warning("serve: the question failed: %s", e)
            self._reply(500, {"error": f"{type(e).__name__}: {e}"})
            return
        self._reply(200, {"answer": answer.to_dict(), "served_by": owner.process, "pid": os.getpid()})
        if req.get("log", True):
            owner.agent.log(answer)  # after the reply: logging embeds the question


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: AskServer


class AskServer:
    """Serves ``agent``'s answers on 127.0.0.1 for ``cypherloop ask`` on the same home and graph."""

    def __init__(self, agent: CypherAgent, settings: Settings, process: str) -> None:
        self.agent = agent
        self.settings = settings
        self.process = process
        self.key = settings_key(settings)
        self.token = secrets.token_urlsafe(32)
        self.lock = threading.Lock()
        self.path = endpoint_file(settings)
        self._http: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Endpoint:
        """Listen, then publish the endpoint file (so a client never finds a file before the socket)."""
        self._http = _Server((HOST, 0), _Handler)
        self._http.owner = self
        self._thread = threading.Thread(target=self._http.serve_forever, name="cypherloop-ask-server",
                                        daemon=True)
        self._thread.start()
        port = self._http.server_address[1]
        ep = Endpoint(HOST, port, self.token, os.getpid(), self.process, self.key)
        self.settings.private_home()
        atomic_write_text(self.path, json.dumps(ep.__dict__), mode=0o600)
        return ep

    def close(self) -> None:
        """Stop listening; remove the endpoint file when it is still this server's."""
        if self._http is None:
            return
        try:
            if json.loads(self.path.read_text(encoding="utf-8")).get("token") == self.token:
                self.path.unlink()
        except (OSError, ValueError):
            pass
        self._http.shutdown()
        self._http.server_close()
        self._http = None


__all__ = ["AskServer", "Endpoint", "ServerRefused", "ask_server", "endpoint_file", "read_endpoint",
           "settings_key"]
