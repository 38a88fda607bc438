"""Service settings: defaults < ``configs/deployment_config.yaml`` < environment < flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)
from pydantic_settings.sources.utils import parse_env_vars

from polarity.configfile import read_yaml_mapping
from polarity.contract import LoadOptions
from polarity.errors import InputError, validation_message
from polarity.registry import RuntimeName

#: Marks a secret setting (keys, a Redis URL that may hold a password): read from the
#: environment or the YAML file, never from a `polarity serve` flag, which `ps` shows.
ENV_ONLY = {"env_only": True}


class Settings(BaseSettings):
    """Everything the service reads. Each field maps to the environment variable of the same
    name in upper case (``MODEL_PATH``, ``RATE_LIMIT`` ...) and to the key of the same name
    under ``service:`` in the YAML file; ``load_settings`` is where both are read."""

    model_config = SettingsConfigDict(use_attribute_docstrings=True, extra="forbid",
                                      case_sensitive=False)

    model_path: str = "default"
    """Model to serve: 'default', 'vader' or a model folder."""
    models: Annotated[list[str], NoDecode] = []
    """Several models served side by side, each with its own queue and model thread
    (comma-separated in the environment; ``polarity serve --model A --model B``): names,
    folders or ``NAME=FOLDER``; a request picks one with ``model``, the first is the
    default. Empty: MODEL_PATH alone."""
    device: str = "cpu"
    """Torch device for the model."""
    max_length: int | None = Field(None, ge=8)
    """Override the model's token limit (None keeps the model card's)."""
    batch_size: int = Field(32, ge=1, le=4096)
    """Largest model call: micro-batches and /analyze/batch chunks."""
    max_wait_ms: float = Field(0.0, ge=0, le=10_000)
    """How long a micro-batch waits for more requests after the first one arrives. 0 takes
    what is queued and runs at once: requests that arrive during a model call still form the
    next batch, and an idle server answers without waiting (2-3 ms better p50 at concurrency 1,
    no measurable throughput change at 64; docs/performance.md)."""
    max_queue: int = Field(1024, ge=1)
    """Texts waiting for the model before new requests get 503."""
    max_batch_items: int = Field(256, ge=1)
    """Most texts in one /analyze/batch request (lowered to MAX_QUEUE and to the rate
    limit's amount when those are smaller: ``texts_per_request``, the one such limit)."""
    max_text_chars: int = Field(10_000, ge=1)
    """Longest accepted text, in characters."""
    max_text_tokens: int = Field(16_384, ge=16)
    """Longest accepted text in tokens once preprocessed (emoji read as words: one emoji
    can become a dozen tokens); longer is 413."""
    quota_unit_tokens: int = Field(512, ge=1)
    """A text costs one rate-limit unit per this many tokens (at least one)."""
    slice_tokens: int = Field(2048, ge=1)
    """Most tokens in one model call (a text is never split: a longer one is a call of its
    own); between calls, keys take turns (serve/batching.py)."""
    max_escalation_queue: int = Field(64, ge=0)
    """Cascades: texts waiting for the accurate stage; past it a text keeps its fast answer
    (``"escalation": "queue_full"``)."""
    max_escalations_per_s: float | None = Field(None, gt=0)
    """Cascades: most texts sent to the accurate stage per second (a token bucket); past it
    a text keeps its fast answer (``"escalation": "rate_capped"``). None: no cap."""
    max_body_bytes: int = Field(2_000_000, ge=256)
    """Largest request body; larger ones get 413."""
    api_key: str | None = Field(None, json_schema_extra=ENV_ONLY)
    """One accepted API key (plain text)."""
    api_keys: Annotated[list[str], NoDecode] = Field([], json_schema_extra=ENV_ONLY)
    """Several accepted API keys (comma-separated in the environment)."""
    api_keys_file: str | None = None
    """File of hashed keys written by `polarity keys create`."""
    auth_disabled: bool = False
    """Serve without API keys (local experiments only)."""
    open_endpoints: Annotated[list[str], NoDecode] = [
        "/api/v1/health", "/api/v1/health/live", "/api/v1/health/ready", "GET /",
        "GET /page.js", "GET /page.css"]
    """Paths reachable without a key (health answers them with its status only: pid,
    memory, uptime and model version need a key); ``METHOD /path`` opens that method only
    (the page is ``GET /``; text-embeddings-inference's ``POST /`` needs a key). Add
    /metrics, /docs or /openapi.json only where every client that can reach the service may
    see them."""
    docs_enabled: bool = True
    """Serve /docs (a page made on the server, nothing from a CDN) and /openapi.json; false:
    neither exists (404)."""
    metrics_enabled: bool = True
    """Serve /metrics; false: it does not exist (404)."""
    rate_limit: str = "1000/hour"
    """Per-key moving-window limit, in the `limits` notation ("1000/hour", "10/second")."""
    redis_url: str | None = Field(None, json_schema_extra=ENV_ONLY)
    """Shared rate-limit storage; without it each worker counts on its own."""
    allow_unshared_limits: bool = False
    """Start several workers (or Ray replicas) without REDIS_URL all the same: each counts
    rate limits on its own, so a key gets up to that many times RATE_LIMIT."""
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
    """Log level of the service."""
    log_texts: bool = False
    """Put request texts into the logs (off: only their length)."""
    host: str = "127.0.0.1"
    """Address to bind."""
    port: int = Field(8000, ge=0, le=65535)
    """Port to bind."""
    workers: int = Field(1, ge=1, le=256)
    """Worker processes."""
    threads: int | None = Field(None, ge=1,
                                validation_alias=AliasChoices("threads", "polarity_num_threads"))
    """Model threads per worker, PyTorch or ONNX Runtime (None: all cores divided by workers)."""
    max_reasoning_texts: int = Field(16, ge=0)
    """Most texts of one request that may ask for a reason: a reason costs up to 48 extra
    model passes (docs/service.md), so a 256-text batch with reasons held the model for 70 s.
    Larger requests get 413; 0 turns reasons off."""
    max_connections: int = Field(2048, ge=1)
    """Open connections (and requests in progress) per worker (uvicorn's limit_concurrency):
    at the cap a request closes the connection idle the longest; 503 only when every one is
    answering something."""
    max_header_bytes: int = Field(32_768, ge=1024)
    """Most bytes of a request outside its body (request line, headers and chunked trailers),
    for every request of a connection, pipelined ones too; more get 431."""
    header_timeout_s: float = Field(10.0, gt=0)
    """Time a client has to send a request's head once it starts; then 408."""
    body_timeout_s: float = Field(10.0, gt=0)
    """Time a client has to send a request's whole body once its head is in; then the
    connection is closed (2 MB needs 200 KB/s)."""
    keep_alive_s: float = Field(5.0, gt=0)
    """Idle time before a keep-alive connection is closed."""
    rate_limit_on_error: Literal["closed", "open"] = "closed"
    """When the rate-limit storage (Redis) fails: ``closed`` answers 503 (no request goes
    unmetered), ``open`` serves the request unmetered and logs a warning."""
    redis_timeout_s: float = Field(0.5, gt=0)
    """Each request's deadline for the rate limit (and the storage's socket timeout): a
    stalled Redis costs a request at most this, however many requests of its key wait."""
    runtime: RuntimeName | None = Field(
        None, validation_alias=AliasChoices("runtime", "polarity_runtime"))
    """Runtime (:data:`polarity.registry.RUNTIMES`): ``auto`` (each backend's preferred
    installed runtime: ONNX Runtime int8 for the encoder), or one by name; None:
    ``POLARITY_RUNTIME``, then ``auto``."""
    dtype: Literal["float32", "bfloat16", "float16"] | None = Field(
        None, validation_alias=AliasChoices("dtype", "polarity_dtype"))
    """Causal LM tier precision; None: ``POLARITY_DTYPE``, then float32 on the CPU and the
    model's own on a GPU."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_other_sources):
        # Built directly, settings are exactly their arguments; the environment and the YAML
        # file are read once, by load_settings at the process edge.
        return (init_settings,)

    @property
    def texts_per_request(self) -> int:
        """The one limit on texts per request: MAX_BATCH_ITEMS, unless the queue or a key's
        whole rate limit holds fewer (a larger request could never be admitted)."""
        from limits import parse

        try:
            amount = parse(self.rate_limit).amount
        except ValueError:
            amount = self.max_batch_items
        return max(1, min(self.max_batch_items, self.max_queue, amount))

    def load_options(self) -> LoadOptions:
        return LoadOptions(device=self.device, runtime=self.runtime, dtype=self.dtype,
                           threads=self.threads, max_length=self.max_length)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value):
        return value.lower() if isinstance(value, str) else value

    @property
    def served(self) -> list[tuple[str, str]]:
        """``(name, model)`` of every served model, the default first."""
        out = []
        for entry in self.models or [self.model_path]:
            name, _, target = entry.partition("=") if "=" in entry else (entry, "", entry)
            out.append((name.strip(), target.strip()))
        return out

    @field_validator("models")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        names = [e.partition("=")[0].strip() if "=" in e else e.strip() for e in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"models: {', '.join(twice)} named twice; give each its own "
                             "name as NAME=FOLDER")
        if any(not n for n in names):
            raise ValueError("models: an empty name; write NAME=FOLDER or a model name")
        return value

    @field_validator("api_keys", "open_endpoints", "models", mode="before")
    @classmethod
    def _split(cls, value):
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @model_validator(mode="after")
    def _limits_shared(self):
        self.refuse_unshared_limits(self.workers, "workers")
        return self

    def refuse_unshared_limits(self, copies: int, what: str) -> None:
        """Several copies of the service (workers, replicas) must share one rate limit
        (REDIS_URL) unless the operator says otherwise: 2 workers without it let 1,652
        requests of one key through against 1000/hour, with only a warning at start."""
        if copies > 1 and not self.redis_url and not self.allow_unshared_limits:
            raise InputError(f"{copies} {what} without REDIS_URL would each count rate limits "
                             f"on their own (a key would get up to {copies} times RATE_LIMIT): "
                             "set REDIS_URL, or ALLOW_UNSHARED_LIMITS=true to accept that")

    def accepted_plain_keys(self) -> list[str]:
        return [k for k in ([self.api_key] if self.api_key else []) + self.api_keys if k]


DEFAULT_CONFIG = Path("configs/deployment_config.yaml")


class _Environment(EnvSettingsSource):
    """Variables from a given mapping: ``os.environ`` at the process edge, a dict in tests."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty,
                              self.env_parse_none_str)


def load_settings(config_file: str | Path | None = None, environ: Mapping[str, str] | None = None,
                  **overrides) -> Settings:
    """Settings from, in rising priority: the YAML file (``config_file``, ``$POLARITY_CONFIG``
    or the default path if it exists), environment variables (the service's own names, then
    the library-wide ``POLARITY_RUNTIME``, ``POLARITY_DTYPE``, ``POLARITY_NUM_THREADS``), and
    explicit non-None overrides (``polarity serve`` flags)."""
    environ = os.environ if environ is None else environ
    init = {k: v for k, v in overrides.items() if v is not None}
    sources: list[PydanticBaseSettingsSource] = [InitSettingsSource(Settings, init),
                                                 _Environment(Settings, environ)]
    path = Path(config_file or environ.get("POLARITY_CONFIG") or DEFAULT_CONFIG)
    if config_file or path.is_file():  # a file named explicitly must exist
        # read once more here for configfile's one-line errors (missing, not YAML, no mapping)
        loaded = read_yaml_mapping(path, "service settings")
        section = "service" if "service" in loaded else None
        if section and not isinstance(loaded[section], dict | None):
            raise InputError(f"{path}: 'service' must hold a mapping of service settings")
        sources.append(YamlConfigSettingsSource(Settings, yaml_file=path,
                                                yaml_config_section=section))
    try:
        return Settings(_build_sources=(tuple(sources), init))
    except (ValidationError, SettingsError) as exc:
        raise InputError(f"invalid service settings: {validation_message(exc)}") from exc


def to_environ(settings: Settings) -> dict[str, str]:
    """The settings as environment variables, so worker processes rebuild them exactly."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        env[name.upper()] = ",".join(value) if isinstance(value, list) else str(value)
    return env
