"""``cypherloop serve`` answers ``cypherloop ask`` for the same home and graph: real processes, real sockets,
the real graph; the model is scripted (loaded in the server process by a two-line wrapper)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.core.settings import load_settings
from agent.models.base import ScriptedGenerator
from tests.conftest import make_settings
from ui.ask_server import Endpoint, endpoint_file, read_endpoint, settings_key
from ui.cli import main

ROOT = Path(__file__).resolve().parent.parent
COUNT = "MATCH (c:Customer) RETURN count(c) AS n"

# The server process: the CLI's own `serve`, with the scripted model in place of a real one and no feedback
# store (no embedding model to load in a test).
SERVE = (
    "import sys, agent.factory, ui.cli_agent\n"
    "from agent.models.base import ScriptedGenerator\n"
    f"agent.factory.make_generator = lambda s: ScriptedGenerator({{'*': {COUNT!r}}},\n"
    "                                                            version='scripted-server')\n"
    "ui.cli_agent.open_feedback_store = lambda s, quiet=False: None\n"
    "from ui.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _env(cl_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYPHERLOOP_")}
    env.update(PYTHONPATH=str(ROOT), CYPHERLOOP_HOME=str(cl_home), CYPHERLOOP_GRAPH="shop",
               CYPHERLOOP_GRAPH_BACKEND="embedded", CYPHERLOOP_EMBEDDED_PORT="0",
               # a client that wrongly answered itself would fail at once, not load a model
               CYPHERLOOP_MODEL_BACKEND="openai", CYPHERLOOP_OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    return env


@pytest.fixture
def server(shop, cl_home, tmp_path) -> Iterator[tuple[subprocess.Popen, dict]]:
    """A running ``cypherloop serve --json`` for graph shop; its ready line (printed once it listens)."""
    proc = subprocess.Popen([sys.executable, "-c", SERVE, "serve", "--json"], cwd=tmp_path, env=_env(cl_home),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # blocks until the server says it listens (or exits)
    if not line:
        proc.wait()
        pytest.fail(f"serve exited {proc.returncode}: {proc.stderr.read()}")
    try:
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _ask(cl_home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ui.cli", "ask", *args], cwd=cwd, env=_env(cl_home),
                          capture_output=True, text=True)


def test_ask_is_answered_by_the_running_server_then_in_process_once_it_stopped(server, cl_home, tmp_path):
    proc, ready = server
    assert ready["host"] == "127.0.0.1" and ready["pid"] == proc.pid and ready["graph"] == "shop"
    path = endpoint_file(make_settings(cl_home))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    run = _ask(cl_home, tmp_path, "How many customers are there?", "--json", "--no-log")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["served_by"] == {"process": "cypherloop serve", "pid": proc.pid}
    assert data["rows"] == [[12]] and data["model_version"] == "scripted-server"

    text = _ask(cl_home, tmp_path, "How many customers are there?", "--no-log")
    assert text.returncode == 0, text.stderr
    assert f"answered by cypherloop serve (pid {proc.pid})" in text.stdout
    assert "The answer is 12." in text.stdout

    proc.terminate()
    assert proc.wait() == 0
    assert not path.exists()  # a clean stop takes its endpoint file with it
    alone = _ask(cl_home, tmp_path, "How many customers are there?", "--json", "--no-log")
    assert json.loads(alone.stdout)["served_by"]["process"] == "this process"  # (which fails: no model here)


def test_the_server_refuses_a_request_without_its_token(server, cl_home):
    _, ready = server
    conn = http.client.HTTPConnection(ready["host"], ready["port"], timeout=30)
    conn.request("POST", "/ask", body=b'{"question": "How many customers?"}',
                 headers={"Authorization": "Bearer guessed"})
    resp = conn.getresponse()
    assert resp.status == 401 and b"12" not in resp.read()
    conn.close()


@pytest.fixture
def cli_env(cl_home, monkeypatch):
    """This test process as the ``ask`` subprocesses see it: the same environment and working directory."""
    monkeypatch.chdir(cl_home)
    for var in [v for v in os.environ if v.startswith("CYPHERLOOP_")]:
        monkeypatch.delenv(var)
    for key, value in _env(cl_home).items():
        if key.startswith("CYPHERLOOP_"):
            monkeypatch.setenv(key, value)


def test_other_settings_are_answered_in_this_process(server, cli_env, monkeypatch, capsys):
    _, ready = server
    monkeypatch.setattr("agent.models.factory.make_generator",
                        lambda settings: ScriptedGenerator([COUNT], version="scripted-here"))
    assert main(["ask", "How many customers?", "--no-log", "--max-attempts", "1"]) == 0
    captured = capsys.readouterr()
    assert f"cypherloop serve (pid {ready['pid']}) answers this graph with other settings" in captured.err
    assert "answered by this process" in captured.out and "scripted-here" in captured.out


@pytest.mark.parametrize("problem", ["nobody listens", "not private"])
def test_a_stale_or_foreign_endpoint_file_is_not_used(shop, cli_env, problem, monkeypatch, capsys):
    settings = load_settings()
    path = endpoint_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path.write_text(json.dumps(Endpoint("127.0.0.1", port, "t", 1, "cypherloop serve",
                                        settings_key(settings)).__dict__))
    os.chmod(path, 0o600 if problem == "nobody listens" else 0o644)
    try:
        assert (read_endpoint(settings) is None) == (problem == "not private")
        monkeypatch.setattr("agent.models.factory.make_generator", lambda s: ScriptedGenerator([COUNT]))
        assert main(["ask", "How many customers?", "--no-log"]) == 0
        captured = capsys.readouterr()
        assert "answered by this process" in captured.out and "other settings" not in captured.err
    finally:
        path.unlink()


def test_asking_a_server_imports_no_heavy_library():
    """What a fresh ``ask`` imports before it knows whether a server answers: none of the libraries that make
    a cold process slow (they are imported only when it answers itself)."""
    heavy = "('torch', 'transformers', 'chromadb', 'langgraph', 'falkordb', 'ctranslate2', 'numpy')"
    code = f"import sys, ui.cli_ask; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
