"""Shared fixtures: a real embedded FalkorDB in a temporary cypherloop home.

- ``cl_home``        session tmp dir used as the cypherloop home (its server is stopped at the end).
- ``settings``       ``Settings(home=cl_home, graph="shop")``, function scope (safe to ``model_copy``).
- ``shop``           session GraphStore with tests/data/shop.cypher loaded as graph "shop". READ ONLY.
- ``scratch_graph``  function-scoped empty GraphStore with a unique name, deleted afterwards.
- ``settings_for``   factory ``settings_for(home, **overrides)``: embedded-backend Settings for another home
                     (stop a server you start there with ``agent.graphdb.embedded.stop``).

No embedded server outlives what started it: after each test that has a ``tmp_path``, a FalkorDB still
running from a folder under it is stopped and fails the test's teardown (its home names the test); at the end
of the session the same for every folder under the session's temporary root (module and session fixtures,
and a store that restarted its server after the fixture stopped it).

Settings here ignore the developer's ``.env`` so a local Neo4j configuration cannot leak into tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.core.env import library_defaults
from agent.core.settings import Settings
from agent.graphdb import GraphStore, open_graph

library_defaults()  # offline, no telemetry: before a test imports a library that reads them

pytest_plugins = ("pytester",)  # test_embedded runs a session of its own to show the leak check at work

DATA = Path(__file__).parent / "data"
SHOP_SCRIPT = DATA / "shop.cypher"


def make_settings(home: Path, **overrides: object) -> Settings:
    """Settings for tests: the embedded backend in ``home``, no ``.env`` file."""
    values: dict[str, object] = {
        "home": home,
        "graph": "shop",
        "graph_backend": "embedded",
        "embedded_port": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
def settings_for():
    """Factory: ``settings_for(home, **overrides)`` for tests that need their own home."""
    return make_settings


@pytest.fixture(scope="session")
def cl_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("cl_home")
    yield home
    if (home / "falkordb").exists():
        from agent.graphdb.embedded import stop

        stop(make_settings(home))


@pytest.fixture
def settings(cl_home: Path) -> Settings:
    return make_settings(cl_home)


@pytest.fixture(scope="session")
def shop(cl_home: Path) -> Iterator[GraphStore]:
    from agent.graphdb.loader import load_script

    store = open_graph(make_settings(cl_home), "shop")
    load_script(store, SHOP_SCRIPT, replace=True, progress=False)
    yield store
    store.close()


@pytest.fixture
def scratch_graph(settings: Settings) -> Iterator[GraphStore]:
    store = open_graph(settings, f"scratch_{uuid.uuid4().hex[:10]}")
    yield store
    try:
        store.delete_graph()
    finally:
        store.close()


# --- no server outlives its test ----------------------------------------------------------------------------


def servers_under(root: Path) -> dict[int, str]:
    """pid → command line of every live redis-server whose config file lies under ``root`` (the embedded
    server's process title ends with its config file's path)."""
    from agent.graphdb.embedded import _pid_alive

    prefix = f"{Path(root).resolve()}{os.sep}"
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "redis-server" in cmd and prefix in cmd and _pid_alive(int(entry.name)):
            found[int(entry.name)] = cmd.strip()
    return found


def stop_servers_under(root: Path) -> list[str]:
    """Stop (SIGTERM, then SIGKILL) every server ``servers_under(root)`` finds; their command lines."""
    from agent.graphdb.embedded import _kill

    left = servers_under(root)
    for pid in left:
        _kill(pid)
    return sorted(left.values())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    tmp = getattr(item, "funcargs", {}).get("tmp_path")
    result = yield  # the test's own fixtures are finalised here (their stop() included)
    if tmp is not None and Path("/proc").is_dir():
        left = stop_servers_under(tmp)
        if left:
            raise AssertionError(f"the test left {len(left)} embedded FalkorDB running (stopped now): "
                                 + "; ".join(left))
    return result


@pytest.fixture(scope="session", autouse=True)
def _no_server_outlives_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Finalised after every other session fixture (autouse: set up first), ``cl_home``'s stop included."""
    yield
    if Path("/proc").is_dir():
        left = stop_servers_under(tmp_path_factory.getbasetemp())
        if left:
            pytest.fail(f"{len(left)} embedded FalkorDB outlived the test session (stopped now): "
                        + "; ".join(left))
