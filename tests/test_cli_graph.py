"""``cypherloop graph …`` / ``cypherloop demo …`` through the real dispatcher and the session server."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from agent.graphdb import embedded
from ui.cli import main
from ui.text_table import format_table


@pytest.fixture
def cli(monkeypatch, tmp_path, cl_home, shop, capsys):
    """Run ``cypherloop ARGS`` against the session home; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)  # no developer .env
    for var in (
        "CYPHERLOOP_HOME",
        "CYPHERLOOP_GRAPH",
        "CYPHERLOOP_GRAPH_BACKEND",
        "CYPHERLOOP_EMBEDDED_PORT",
    ):
        monkeypatch.delenv(var, raising=False)

    def run(*args: str, home=cl_home) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([args[0], args[1], "--home", str(home), *args[2:]])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["graph"],
        ["graph", "load"],
        ["graph", "schema"],
        ["graph", "query"],
        ["graph", "stats"],
        ["graph", "stop"],
        ["demo"],
        ["demo", "init"],
    ],
)
def test_help(args, capsys):
    assert main([*args, "--help"]) == 0
    assert "usage: cypherloop" in capsys.readouterr().out


def test_query_prints_a_table(cli):
    code, out, _ = cli(
        "graph",
        "query",
        "--graph",
        "shop",
        "MATCH (c:Customer) WHERE c.city = 'Berlin' RETURN c.name AS name, c.joined ORDER BY name",
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split(" | ")[0].strip() == "name" and set(lines[1]) <= {"-", "+"}
    assert lines[2].startswith("Alice Meyer ") and lines[3].startswith("Felix Wagner")
    assert lines[-1].startswith("(2 rows,")


def test_query_json_and_row_cap(cli):
    code, out, _ = cli(
        "graph",
        "query",
        "--graph",
        "shop",
        "--json",
        "--max-rows",
        "3",
        "MATCH (p:Product) RETURN p ORDER BY p.product_id",
    )
    assert code == 0
    data = json.loads(out)
    assert data["columns"] == ["p"] and len(data["rows"]) == 3 and data["truncated"] is True
    assert data["rows"][0][0]["name"] == "Laptop Pro 14"


def test_home_before_the_subcommand(cli, cl_home, capsys):
    assert main(["graph", "--home", str(cl_home), "stats", "--graph", "shop", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nodes"]["Customer"] == 12


def test_stats_and_schema(cli):
    code, out, _ = cli("graph", "stats", "--graph", "shop")
    assert code == 0 and "Customer" in out and "94" in out
    code, out, _ = cli("graph", "schema", "--graph", "shop")
    assert code == 0 and "(:Order)-[:CONTAINS]->(:Product)" in out
    code, out, _ = cli("graph", "schema", "--graph", "shop", "--json")
    assert code == 0 and {x["label"] for x in json.loads(out)["labels"]} >= {"Customer", "Product"}


def test_write_query_is_refused(cli, shop):
    before = shop.stats()
    code, _, err = cli("graph", "query", "--graph", "shop", "MATCH (n) DETACH DELETE n")
    assert code != 0 and "refused" in _one_error_line(err).lower()
    assert shop.stats() == before


def test_unparsable_cypher(cli):
    code, _, err = cli("graph", "query", "--graph", "shop", "MATCH (c:Customer RETURN c")
    assert code != 0 and "invalid Cypher" in _one_error_line(err)


def test_unknown_graph(cli):
    code, _, err = cli("graph", "query", "--graph", "no_such_graph", "MATCH (n) RETURN n")
    line = _one_error_line(err)
    assert code != 0 and "no_such_graph" in line and "shop" in line


def test_missing_script(cli, tmp_path):
    code, _, err = cli("graph", "load", str(tmp_path / "missing.cypher"))
    assert code != 0 and "missing.cypher" in _one_error_line(err)


def test_bad_option_value(cli):
    code, _, err = cli("graph", "query", "--graph", "shop", "--max-rows", "0", "RETURN 1")
    assert code != 0 and "--max-rows" in _one_error_line(err)


def test_errors_in_a_real_process_have_no_traceback(cl_home, shop, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ui.cli",
            "graph",
            "query",
            "--home",
            str(cl_home),
            "--graph",
            "shop",
            "CREATE (:X)",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1]),
        },
    )
    assert proc.returncode != 0 and proc.stdout == ""
    assert "refused" in _one_error_line(proc.stderr)


def test_load_script(cli, settings, tmp_path):
    pytest.importorskip("agent.graphdb.loader")
    from agent.graphdb import open_graph

    name = f"cli_load_{uuid.uuid4().hex[:8]}"
    script = tmp_path / "tiny.cypher"
    script.write_text("// two statements\nCREATE (:A {x: 1});\nCREATE (:A {x: 2})-[:R]->(:B);\n")
    try:
        code, out, _ = cli("graph", "load", str(script), "--graph", name, "--replace")
        assert code == 0 and "3 nodes" in out and "1 relationships" in out
        code, out, _ = cli("graph", "load", str(script), "--graph", name, "--replace")
        assert code == 0 and "3 nodes" in out  # replaced, not appended
    finally:
        store = open_graph(settings, name)
        store.delete_graph()
        store.close()


def test_graph_stop(cli, tmp_path, settings_for):
    home = tmp_path / "home"
    info = embedded.ensure_running(settings_for(home))
    code, out, _ = cli("graph", "stop", home=home)
    assert code == 0 and "stopped" in out
    assert not embedded._pid_alive(info.pid)
    code, out, _ = cli("graph", "stop", home=home)
    assert code == 0 and "not running" in out


def test_demo_init_is_idempotent(cli, tmp_path, settings_for):
    pytest.importorskip("agent.demo")
    home = tmp_path / "demo_home"
    try:
        code, out, _ = cli("demo", "init", "--seed", "1", home=home)
        assert code == 0 and "built demo graph" in out
        code, out, _ = cli("demo", "init", home=home)
        assert code == 0 and "already exists" in out
    finally:
        embedded.stop(settings_for(home))


def test_format_table_aligns_and_shortens():
    text = format_table(["a", "bb"], [[1, "x" * 100], [None, {"k": [1]}], [22, True]])
    lines = text.splitlines()
    assert lines[0] == "   a | bb"  # numbers right-aligned
    assert lines[1] == "-----+-" + "-" * 80
    assert lines[2] == "   1 | " + "x" * 79 + "…"
    assert lines[3] == 'null | {"k": [1]}'
    assert lines[4] == "  22 | true"


def test_unreachable_external_database(cli, monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("CYPHERLOOP_GRAPH_BACKEND", "falkordb")
    monkeypatch.setenv("CYPHERLOOP_FALKORDB_URL", f"redis://:topsecret@127.0.0.1:{port}")
    code, _, err = cli("graph", "stats", "--graph", "shop")
    line = _one_error_line(err)
    assert code != 0 and "cannot reach FalkorDB" in line and "topsecret" not in line


def test_unwritable_home(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = cli("graph", "stats", home=blocker / "home")
    assert code != 0 and "CYPHERLOOP_HOME" in _one_error_line(err)
