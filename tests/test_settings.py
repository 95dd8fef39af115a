import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.core.settings import Settings, load_settings, redact_url


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.graph_backend == "embedded"
    assert s.home == Path(".cypherloop")
    assert s.max_attempts == 3


def test_seed_names_and_prefix_from_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEO4J_URI", "neo4j://db:7687")
    monkeypatch.setenv("NEO4J_PASSWORD", "s3cret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abc")
    monkeypatch.setenv("CYPHERLOOP_GRAPH", "movies")
    monkeypatch.setenv("CYPHERLOOP_MAX_ATTEMPTS", "5")
    s = Settings()
    assert s.neo4j_uri == "neo4j://db:7687"
    assert s.neo4j_password.get_secret_value() == "s3cret"
    assert s.graph == "movies" and s.max_attempts == 5
    red = repr(s.redacted())
    assert "s3cret" not in red and "sk-abc" not in red and "s3cret" not in repr(s)


def test_dotenv_file(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CYPHERLOOP_GRAPH=northwind\nNEO4J_DATABASE=shop\n")
    s = Settings()
    assert s.graph == "northwind" and s.neo4j_database == "shop"


def test_env_beats_dotenv(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CYPHERLOOP_GRAPH=northwind\n")
    monkeypatch.setenv("CYPHERLOOP_GRAPH", "movies")
    assert Settings().graph == "movies"


def test_redact_url():
    assert redact_url("redis://:pw@127.0.0.1:6379") == "redis://:***@127.0.0.1:6379"
    assert redact_url("bolt://neo4j:secret@h:7687/x") == "bolt://neo4j:***@h:7687/x"


def test_model_copy_with_another_home_moves_every_path(tmp_path):
    from agent.core.settings import Settings

    first = Settings(home=tmp_path / "a")
    assert first.path("x") == (tmp_path / "a" / "x").resolve()
    second = first.model_copy(update={"home": tmp_path / "b"})
    assert second.path("x") == (tmp_path / "b" / "x").resolve()


def test_candidates_default_to_four_on_a_gpu_and_one_elsewhere(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.candidates is None
    assert s.model_copy(update={"device": "cuda:0"}).resolved_candidates() == 4
    assert s.model_copy(update={"device": "cpu"}).resolved_candidates() == 1
    assert s.model_copy(update={"device": "cuda", "model_backend": "openai"}).resolved_candidates() == 1
    assert s.model_copy(update={"device": "cuda", "candidates": 2}).resolved_candidates() == 2
    monkeypatch.setenv("CYPHERLOOP_CANDIDATES", "3")
    assert load_settings().resolved_candidates() == 3


def test_the_default_candidates_cost_no_torch_import_where_ctranslate2_decides(tmp_path):
    """A cold ``ask`` reads ``resolved_candidates`` before its first question: with ctranslate2 installed, the
    CUDA test is ctranslate2's (the backend choice's own), not an import of torch (seconds on a CPU)."""
    pytest.importorskip("ctranslate2")
    code = ("import sys, ctranslate2; from agent.core.settings import load_settings; "
            "n = load_settings().resolved_candidates(); "
            "print(n == (4 if ctranslate2.get_cuda_device_count() > 0 else 1), 'torch' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYPHERLOOP_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                         check=True).stdout
    assert out.split() == ["True", "False"]
