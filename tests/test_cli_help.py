import subprocess
import sys

import pytest

from ui.cli import COMMANDS, main


def test_top_level_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_no_arguments_prints_usage_and_fails(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_unknown_command_is_one_clear_line(capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown command" in err[0]


def test_help_does_not_import_heavy_packages():
    heavy = "('torch','transformers','gradio','chromadb','peft','trl')"
    code = ("import sys; from ui.cli import main; main(['--help']); "
            f"print(sorted(m for m in {heavy} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_has_help(name, capsys):
    assert main([name, "--help"]) == 0
    assert "usage" in capsys.readouterr().out.lower()


def test_recipe_listings_name_both_kinds(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one help line per option: names are not wrapped at their hyphens
    assert main(["bootstrap", "--help"]) == 0
    assert "shipped: full-cpu, full-gpu;" in capsys.readouterr().out
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "tiny-cpu" in out and "full fine-tunes for `cypherloop bootstrap`: full-cpu, full-gpu" in out
