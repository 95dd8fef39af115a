"""The embedded FalkorDB server manager, each test on its own home (never the session server)."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.core.errors import GraphUnavailable
from agent.core.settings import Settings
from agent.graphdb import embedded, open_graph
from agent.graphdb.embedded import ServerInfo, ensure_running, running, start_throwaway, stop


def make_settings(home: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"home": home, "graph_backend": "embedded", "embedded_port": 0, **overrides}
    return Settings(_env_file=None, **values)


@pytest.fixture
def home(tmp_path: Path):
    """A private cypherloop home whose server (if any) is stopped afterwards: always by ``stop``, which also
    ends one that does not answer in time (``running`` alone, on a loaded machine, took such a server for
    none and left it running)."""
    yield tmp_path
    stop(make_settings(tmp_path))


def _wait_until_in_aof(folder: Path, needle: bytes) -> None:
    """Wait for the server to write a change to its append-only file (the event a kill -9 cannot undo),
    rather than for the ~1 s that ``appendfsync everysec`` may take."""
    while not any(needle in f.read_bytes() for f in (folder / "appendonlydir").glob("*.aof")):
        time.sleep(0.05)  # a polling interval, not a limit


def _kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    assert embedded._wait_dead(pid, 10)


def test_server_is_private_and_persistent_by_config(home):
    info = ensure_running(make_settings(home))
    d = home / "falkordb"
    for name in ("credentials.json", "redis.conf"):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600, name
    assert json.loads((d / "credentials.json").read_text())["password"] == info.password
    assert info.password not in repr(info)
    assert (
        info.password not in Path(f"/proc/{info.pid}/cmdline").read_text() if Path("/proc").exists() else True
    )
    r = info.redis()
    try:
        assert r.config_get("bind")["bind"] == "127.0.0.1"
        assert r.config_get("protected-mode")["protected-mode"] == "yes"
        assert r.config_get("appendonly")["appendonly"] == "yes"
        assert r.config_get("appendfsync")["appendfsync"] == "everysec"
        assert r.config_get("save")["save"]  # RDB snapshots too
        assert Path(r.config_get("dir")["dir"]) == d
    finally:
        r.close()
    assert ensure_running(make_settings(home)) == info  # second call: the same server


def test_data_survives_kill_9(home):
    settings = make_settings(home)
    g = open_graph(settings, "persist")
    g.write("CREATE (:Thing {name: 'kept', n: 42})")
    pid = running(settings).pid
    _wait_until_in_aof(home / "falkordb", b"kept")  # kill -9 spares what reached the file
    _kill9(pid)
    assert running(settings) is None
    info = ensure_running(settings)
    assert info.pid != pid
    res = open_graph(settings, "persist").query("MATCH (t:Thing) RETURN t.name, t.n")
    assert res.rows == [["kept", 42]]
    g.close()


def test_two_processes_share_one_server(home):
    code = (
        "import json, sys; from agent.core.settings import Settings; from agent.graphdb.embedded import "
        "ensure_running;"
        "i = ensure_running(Settings(_env_file=None, home=sys.argv[1], graph_backend='embedded', "
        "embedded_port=0));"
        "print(json.dumps([i.pid, i.port]))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(home)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [json.loads(p.communicate()[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1]
    assert running(make_settings(home)).pid == outs[0][0]


def test_stale_pidfile_of_dead_process_is_recovered(home):
    settings = make_settings(home)
    old = ensure_running(settings)
    _kill9(old.pid)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (home / "falkordb" / "redis.pid").write_text(f"{dead.pid}\n")
    info = ensure_running(settings)
    assert info.pid not in (old.pid, dead.pid) and running(settings) == info


def test_pidfile_naming_an_unrelated_live_process_is_not_killed(home):
    settings = make_settings(home)
    old = ensure_running(settings)
    _kill9(old.pid)
    (home / "falkordb" / "redis.pid").write_text(f"{os.getpid()}\n")  # this test process: alive, not redis
    info = ensure_running(settings)
    assert info.pid != os.getpid() and running(settings) == info


def test_our_server_not_answering_with_our_password_is_restarted(home):
    settings = make_settings(home)
    open_graph(settings, "g").write("CREATE (:Kept)")
    old = ensure_running(settings)
    cred = home / "falkordb" / "credentials.json"
    cred.write_text(json.dumps({"password": "changed-by-someone"}))  # the running server no longer matches
    info = ensure_running(settings)
    assert info.pid != old.pid and not embedded._pid_alive(old.pid)
    assert info.password == "changed-by-someone"
    assert open_graph(settings, "g").query("MATCH (k:Kept) RETURN count(k)").rows == [[1]]


def test_stop_saves_and_shuts_down(home):
    settings = make_settings(home)
    open_graph(settings, "g").write("CREATE (:Saved)")
    info = ensure_running(settings)
    assert stop(settings) is True
    assert not embedded._pid_alive(info.pid) and running(settings) is None
    assert stop(settings) is False
    assert open_graph(settings, "g").query("MATCH (s:Saved) RETURN count(s)").rows == [[1]]


def test_port_in_use_is_a_clear_error(home):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(GraphUnavailable) as e:
            ensure_running(make_settings(home, embedded_port=port), timeout_s=10)
    assert str(port) in str(e.value) and "\n" not in str(e.value)


def test_throwaway_server(tmp_path):
    info = start_throwaway(tmp_path, appendonly=False)
    assert isinstance(info, ServerInfo)
    r = info.redis()
    try:
        assert r.config_get("appendonly")["appendonly"] == "no"
        r.execute_command("GRAPH.QUERY", "t", "CREATE (:A)")
        assert r.execute_command("GRAPH.LIST") == ["t"]
    finally:
        r.close()
    assert stop(info) is True
    assert not embedded._pid_alive(info.pid)


def test_a_server_left_running_under_a_folder_is_found_and_stopped(tmp_path):
    from conftest import servers_under, stop_servers_under

    info = start_throwaway(tmp_path / "left")
    assert list(servers_under(tmp_path)) == [info.pid] and not servers_under(tmp_path / "elsewhere")
    [line] = stop_servers_under(tmp_path)
    assert str(tmp_path / "left" / "redis.conf") in line
    assert not embedded._pid_alive(info.pid) and servers_under(tmp_path) == {}


def test_a_test_that_leaves_its_server_running_fails_its_teardown(pytester, monkeypatch):
    """The suite's own check (conftest.py): a FalkorDB started under a test's tmp_path and still running after
    its fixtures are finalised is stopped and fails the test's teardown, naming the folder."""
    here = Path(__file__).resolve().parent
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(here.parent), str(here)]))
    pytester.makeconftest((here / "conftest.py").read_text())
    pytester.makepyfile(
        """
        from agent.graphdb.embedded import start_throwaway

        def test_forgets_to_stop(tmp_path):
            start_throwaway(tmp_path / "forgotten")

        def test_next(tmp_path):  # the last test's teardown is the session's: the session check answers there
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["ERROR *::test_forgets_to_stop - AssertionError: the test left 1 embedded "
                                 "FalkorDB running (stopped now): *test_forgets_to_stop0/forgotten/*"])

    # one a module fixture starts and never stops is caught when the session ends
    pytester.makepyfile(
        """
        import pytest
        from agent.graphdb.embedded import start_throwaway

        @pytest.fixture(scope="module")
        def db(tmp_path_factory):
            return start_throwaway(tmp_path_factory.mktemp("module-db"))

        def test_uses_it(db):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*1 embedded FalkorDB outlived the test session (stopped now): *module-db*"])
