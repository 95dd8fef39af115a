"""`.env.example` documents every setting (its environment variable name)."""

from pathlib import Path

from pydantic import AliasChoices

from agent.core.settings import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"


def test_every_setting_is_documented():
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        env = alias.choices[0] if isinstance(alias, AliasChoices) else f"CYPHERLOOP_{name.upper()}"
        assert f"# {env}=" in text, f"{env} missing from .env.example"


def test_example_holds_no_secret_values():
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if any(k in line for k in ("PASSWORD=", "API_KEY=")):
            assert line.rstrip().endswith("="), line
