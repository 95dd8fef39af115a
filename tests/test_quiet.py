"""Issue 16 #8: no library noise on the user's terminal (a fresh interpreter, as a command starts)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

QUIET_RUN = """
from agent.core.env import quiet_libraries
quiet_libraries()
import logging, warnings
# what bitsandbytes logs on CPUs with AVX512-BF16 when the optional `kernels` package is missing
logging.getLogger("bitsandbytes.backends.cpu.ops").warning("Failed to load CPU gemm_4bit_forward")
warnings.warn("a library's deprecation notice", FutureWarning, stacklevel=1)
from feedback_store.embeddings import embed  # loads a transformers model: no "Loading weights" bar
embed(["How many customers are there?"])
print("done")
"""


def test_a_command_loads_models_without_bars_or_notices():
    out = subprocess.run([sys.executable, "-c", QUIET_RUN], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "done"
    assert out.stderr.strip() == "", out.stderr


def test_warm_converts_a_gguf_without_the_conversion_bar_unless_verbose(shop, cl_home, tmp_path):
    """transformers draws "Converting and de-quantizing GGUF tensors" with tqdm itself; ``cypherloop warm``
    (``make demo``'s step) hides it, and its ``--verbose`` shows it."""
    from agent_helpers import make_tiny_gguf

    quiet_gguf = make_tiny_gguf(tmp_path / "tiny-quiet.gguf")
    verbose_gguf = shutil.copy(quiet_gguf, tmp_path / "tiny-verbose.gguf")  # converted into its own folder

    def warm(gguf, *flags):
        return subprocess.run(
            [sys.executable, "-m", "ui.cli", "warm", "--home", str(cl_home), "--graph", "shop",
             "--backend", "transformers", "--model", str(gguf), "--adapter", "none", *flags],
            capture_output=True, text=True, cwd=ROOT,
        )

    quiet = warm(quiet_gguf)
    assert quiet.returncode == 0, quiet.stderr
    assert "ready: tiny-quiet+base" in quiet.stdout
    assert quiet.stderr == ""
    assert (cl_home / "models" / "tiny-quiet" / "model.safetensors").is_file()  # it did convert
    verbose = warm(verbose_gguf, "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    assert "Converting and de-quantizing GGUF tensors" in verbose.stderr
