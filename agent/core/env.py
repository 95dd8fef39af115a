"""The environment the ML and UI libraries read at import time, set in one place.

Hugging Face, tokenizers, Chroma and Gradio read these variables when they are first imported, so
``library_defaults()`` runs before them: at the start of every command (``ui.cli.main``,
``python -m finetune.train``) and before the embedding model loads. Values the user set win
(``os.environ.setdefault``); calling it twice changes nothing. ``quiet_libraries()`` adds silence for
the commands whose output is an answer (``ask``, ``eval``, ``warm``, ``ui``), not a training log;
``verbose_libraries()`` (their ``--verbose``) lets the libraries speak again, and ``libraries_quiet()`` tells
code that draws a library's bar itself (the GGUF conversion) which one holds.
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
    # bars of no use offline: the hub's, transformers' "Loading weights", datasets' one per map/filter
    # (hundreds in a training run); cypherloop draws its own bars (training steps, generation, evaluation)
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
}
"""Variable → value for every library default cypherloop relies on."""

QUIET_ENV: dict[str, str] = {
    "TRANSFORMERS_VERBOSITY": "error",
}
"""Added by ``quiet_libraries``: no library notices between a question and its answer."""

_quiet = False


def library_defaults() -> None:
    """Offline, no telemetry, no library progress bars (idempotent; the user's own values win)."""
    for key, value in LIBRARY_ENV.items():
        os.environ.setdefault(key, value)
    # bitsandbytes (imported by transformers/peft when installed) warns on CPUs with AVX512-BF16 that it
    # found no optional `kernels` package: nothing a cypherloop user can or needs to act on.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    # transformers >= 5.2x requires `kernels`; with it installed bitsandbytes asks the Hub for a CPU kernel
    # at import, which offline mode refuses with a warning ("Skipping publisher trust check ..."): the
    # built-in kernel serves, and the line is noise on a user's terminal (and before a CLI's one-line error).
    logging.getLogger("kernels").setLevel(logging.ERROR)


def quiet_libraries() -> None:
    """``library_defaults`` plus no library chatter on the user's terminal."""
    library_defaults()
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    # Deprecation notices between libraries (peft calling transformers' older names, Gradio's and
    # Chroma's own) are for their developers, not for someone asking a question.
    warnings.filterwarnings("ignore", category=FutureWarning)
    global _quiet
    _quiet = True


def verbose_libraries() -> None:
    """Undo ``quiet_libraries`` (a command's ``--verbose``): library notices, warnings and bars show again."""
    global _quiet
    _quiet = False
    for key, value in QUIET_ENV.items():
        if os.environ.get(key) == value:
            del os.environ[key]
    warnings.filterwarnings("default", category=FutureWarning)


def libraries_quiet() -> bool:
    """Whether ``quiet_libraries`` holds in this process (and no ``verbose_libraries`` came after it)."""
    return _quiet
