"""Issue 16 #8: no library noise on the user's terminal (a fresh interpreter, as a command starts)."""

from __future__ import annotations

import subprocess
import sys

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
