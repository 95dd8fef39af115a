"""Shared fixtures: a real embedded FalkorDB in a temporary cypherloop home.

- ``cl_home``        session tmp dir used as the cypherloop home (its server is stopped at the end).
- ``settings``       ``Settings(home=cl_home, graph="shop")``, function scope (safe to ``model_copy``).
- ``shop``           session GraphStore with tests/data/shop.cypher loaded as graph "shop". READ ONLY.
- ``scratch_graph``  function-scoped empty GraphStore with a unique name, deleted afterwards.
- ``settings_for``   factory ``settings_for(home, **overrides)``: embedded-backend Settings for another home
                     (stop a server you start there with ``agent.graphdb.embedded.stop``).

Settings here ignore the developer's ``.env`` so a local Neo4j configuration cannot leak into tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.core.env import library_defaults
from agent.core.settings import Settings
from agent.graphdb import GraphStore, open_graph

library_defaults()  # offline, no telemetry: before a test imports a library that reads them

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
