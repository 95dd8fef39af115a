"""The environment the ML and UI libraries read at import time, set in one place.

Hugging Face, tokenizers, Chroma and Gradio read these variables when they are first imported, so
``library_defaults()`` runs before them: at the start of every command (``ui.cli.main``,
``python -m finetune.train``) and before the embedding model loads. Values the user set win
(``os.environ.setdefault``); calling it twice changes nothing. ``quiet_libraries()`` adds silence for
the commands whose output is an answer (``ask``, ``eval``, ``ui``), not a training log.
"""

from __future__ import annotations

import logging
import os
import warnings

LIBRARY_ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",  # cypherloop never downloads; a hub-name lookup would retry for ~70 s first
    "TOKENIZERS_PARALLELISM": "false",
    "ANONYMIZED_TELEMETRY": "False",  # Chroma
    "GRADIO_ANALYTICS_ENABLED": "False",
}
"""Variable → value for every library default cypherloop relies on (DESIGN.md §5)."""

QUIET_ENV: dict[str, str] = {
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}
"""Added by ``quiet_libraries``: no library notices between a question and its answer."""


def library_defaults() -> None:
    """Offline and no telemetry (idempotent; the user's own values win)."""
    for key, value in LIBRARY_ENV.items():
        os.environ.setdefault(key, value)


def quiet_libraries() -> None:
    """``library_defaults`` plus no library chatter on the user's terminal."""
    library_defaults()
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    # bitsandbytes (imported by transformers/peft when installed) warns about optional CPU kernels.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    # Deprecation notices between the ML libraries (peft calling transformers' older names) are for
    # their developers, not for someone asking a question.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft|torch)(\.|$)")
