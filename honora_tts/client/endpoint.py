"""The RunPod endpoint client: RunPod's operations plus honora's synthesis calls.

:class:`EndpointClient` is a facade: the transport with its deadlines, bounded bodies and
retries (:mod:`._base_client`), the job runner (:mod:`.job_runner`: submit, wait, stream, cancel
on giving up), the finished-job decision (:mod:`._response_reader`) and the resources composed
of them (:mod:`.resources`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Self

import httpx

from honora_tts.client import _constants as C
from honora_tts.client._base_client import BaseClient, RetryPolicy
from honora_tts.client._configuration import EndpointMode, settings_from_env
from honora_tts.client._response_reader import ResponseReader
from honora_tts.client._voice_upload import VoiceUploader
from honora_tts.client.census_report import Census
from honora_tts.client.job_runner import JobRunner
from honora_tts.client.load_balancing import AffinityMode, LoadBalancedJobRunner
from honora_tts.client.resources.batch import BatchDefaults, BatchSynthesis
from honora_tts.client.resources.census import CensusTaker
from honora_tts.client.resources.health import Health
from honora_tts.client.resources.synthesis import Synthesis, SynthesisStream
from honora_tts.client.results import (
    BatchResult,
    EndpointHealth,
    HealthReport,
    JobStatus,
    SectionRequest,
    SynthesisResult,
)
from honora_tts.protocol import HANDLER_VERSION, SynthesisParams
from honora_tts.settings import ClientSettings


class EndpointClient:
    """A client for one RunPod (or localpod) endpoint. Thread-safe: share one per endpoint."""

    def __init__(
        self,
        endpoint_id: str,
        api_key: str,
        api_base: str = C.DEFAULT_API_BASE,
        *,
        timeout: httpx.Timeout = C.DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        deadline_s: float = C.DEFAULT_DEADLINE_S,
        min_handler_version: int = HANDLER_VERSION,
        voice_store: Any = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_response_bytes: int = C.MAX_RESPONSE_BYTES,
        management_api_key: str | None = None,
        mode: EndpointMode = "queue",
        affinity: AffinityMode = "soft",
    ) -> None:
        """``voice_store``: an object with ``upload(path) -> StoredVoice`` (default: the one
        ``honora_tts.voices.voice_store_from_env()`` returns, made on first use).
        ``max_response_bytes``: the most bytes read from any one answer or audio download,
        after decompression. ``management_api_key``: the key of the endpoint's management API
        (None: ``api_key``, as one RunPod key may serve both; localpod gives each API its
        own). ``mode="load_balancing"``: a RunPod load-balancing endpoint whose workers answer
        at ``api_base`` (``https://ENDPOINT_ID.api.runpod.ai``), with worker ``affinity``
        (:mod:`honora_tts.client.load_balancing`). ``transport`` and ``sleep`` replace the
        network and ``time.sleep`` (tests)."""
        self._api_base = api_base.rstrip("/")
        self.mode = mode
        self._base = BaseClient(
            base_url=(self._api_base if mode == "load_balancing"
                      else f"{self._api_base}/{endpoint_id}"),
            endpoint_id=endpoint_id, api_key=api_key, timeout=timeout, retry=retry,
            transport=transport, sleep=sleep, max_response_bytes=max_response_bytes,
        )
        self._management_api_key = (management_api_key or "").strip() or None
        self.jobs = (
            LoadBalancedJobRunner(self._base, deadline_s=deadline_s, affinity=affinity)
            if mode == "load_balancing" else JobRunner(self._base, deadline_s=deadline_s)
        )
        self._responses = ResponseReader(min_handler_version)
        self._voices = VoiceUploader((lambda: voice_store) if voice_store is not None else None)
        self._synthesis = Synthesis(self.jobs, self._voices, self._responses)
        self._batch = BatchSynthesis(self._synthesis)
        self._health = Health(self.jobs, self._responses)
        self._census = CensusTaker(self._health)
        self.source = "arguments"

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | ClientSettings | None = None,
        *,
        endpoint: str | None = None,
        api_key: str | None = None,
        api_base: str | None = None,
        **kwargs: Any,
    ) -> EndpointClient:
        """A client for the endpoint ``RUNPOD_ENDPOINT_ID`` names (key ``RUNPOD_API_KEY``,
        base ``RUNPOD_API_BASE``), read from ``env`` (:class:`ClientSettings`, or a mapping
        to read them from; default: the process environment).

        ``endpoint`` overrides the id; ``endpoint="localpod"`` opts in to a local endpoint: a
        running ``honora-tts localpod``, else one started for this process (noise audio from a
        tiny random-weights model; a loud warning says so; needs ``honora-tts[localpod]``).
        Without either, :class:`EndpointNotConfigured` says what to set."""
        settings = settings_from_env(env, endpoint=endpoint, api_key=api_key, api_base=api_base)
        kwargs.setdefault("management_api_key", settings.management_api_key)
        kwargs.setdefault("mode", settings.mode)
        kwargs.setdefault("affinity", settings.affinity)
        client = cls(settings.endpoint_id, settings.api_key, settings.api_base, **kwargs)
        client.source = settings.source
        return client

    @property
    def endpoint_id(self) -> str:
        return self._base.endpoint_id

    @property
    def api_base(self) -> str:
        return self._api_base

    @property
    def api_key(self) -> str:
        """The job API's key; never logged."""
        return self._base.api_key

    @property
    def management_api_key(self) -> str:
        """The management API's key: its own where one was given
        (``RUNPOD_MANAGEMENT_API_KEY``, localpod's), else the job API's key."""
        return self._management_api_key or self._base.api_key

    @property
    def deadline_s(self) -> float:
        """The default deadline of a job, in seconds."""
        return self.jobs.deadline_s

    @deadline_s.setter
    def deadline_s(self, value: float) -> None:
        self.jobs.deadline_s = value

    @property
    def min_handler_version(self) -> int:
        """Workers with an older handler version count as stale."""
        return self._responses.min_handler_version

    @min_handler_version.setter
    def min_handler_version(self, value: int) -> None:
        self._responses.min_handler_version = value

    def __repr__(self) -> str:
        return f"EndpointClient({self._base!r}, source={self.source!r}, mode={self.mode!r})"

    def close(self) -> None:
        """Close the HTTP connections (and a voice store this client made)."""
        self._base.close()
        self._voices.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------- RunPod operations

    def run(
        self,
        input: Mapping[str, Any],
        *,
        request_id: str | None = None,
        policy: Mapping[str, Any] | None = None,
        webhook: str | None = None,
    ) -> JobStatus:
        """``POST /run``: queue a job and return its id and state. Refused before sending when
        the body exceeds 10 MB; re-sent only when it provably never reached RunPod."""
        return self.jobs.run(input, request_id=request_id, policy=policy, webhook=webhook)

    def runsync(
        self,
        input: Mapping[str, Any],
        *,
        request_id: str | None = None,
        wait_ms: int | None = None,
        policy: Mapping[str, Any] | None = None,
    ) -> JobStatus:
        """``POST /runsync``: run a job and wait for it (RunPod answers after about 90 s with the
        job still running; then :meth:`wait` for it). ``wait_ms`` is how long RunPod keeps the
        result (1 s to 5 min). Refused before sending when the body exceeds 20 MB."""
        return self.jobs.runsync(input, request_id=request_id, wait_ms=wait_ms, policy=policy)

    def status(
        self, job_id: str, *, request_id: str | None = None, deadline: Any = None
    ) -> JobStatus:
        """``GET /status/{job_id}`` (retried on transient failures)."""
        return self.jobs.status(job_id, request_id=request_id, deadline=deadline)

    def stream(
        self,
        job_id: str,
        *,
        request_id: str | None = None,
        deadline_s: float | None = None,
    ) -> Iterator[Any]:
        """``GET /stream/{job_id}`` until the job is final, yielding each streamed output.
        CANCELLED, FAILED and TIMED_OUT end the stream like COMPLETED (check :meth:`status`).
        A job still streaming at the deadline is cancelled and JobTimedOut raised; so is one
        whose stream is closed before its end (leaving the loop early)."""
        deadline = self.jobs.deadline(deadline_s)
        for poll in self.jobs.stream_polls(job_id, request_id, deadline):
            yield from poll.outputs

    def cancel(self, job_id: str, *, request_id: str | None = None) -> JobStatus:
        """``POST /cancel/{job_id}``; idempotent, so retried on transient failures."""
        return self.jobs.cancel(job_id, request_id=request_id)

    def purge_queue(self) -> dict[str, Any]:
        """``POST /purge-queue``: drop every queued job (running jobs go on)."""
        return self.jobs.purge_queue()

    def health(self, *, deadline_s: float | None = None) -> EndpointHealth:
        """``GET /health``: job and worker counts by state (retries included, within
        ``deadline_s``; default 120 s)."""
        return self._health.endpoint(deadline_s)

    def wait(
        self,
        job_id: str,
        *,
        request_id: str | None = None,
        deadline_s: float | None = None,
    ) -> JobStatus:
        """Poll ``/status`` until the job is final. At the deadline the job is cancelled and
        :class:`JobTimedOut` raised."""
        status, _ = self.jobs.wait(job_id, request_id, self.jobs.deadline(deadline_s))
        return status

    # ------------------------------------------------------------------ synthesis

    def synthesize(
        self,
        text: str,
        voice: Any = None,
        language: str = "en",
        *,
        voice_sha256: str | None = None,
        format: str = "wav",
        sample_rate: int | None = None,
        delivery: str = "auto",
        params: SynthesisParams | Mapping[str, Any] | None = None,
        request_id: str | None = None,
        deadline_s: float | None = None,
    ) -> SynthesisResult:
        """Synthesize ``text`` and return the audio with its provenance and timings.

        ``voice``: None or '' for the worker's default voice, a local file path (uploaded to
        the voice store once per content hash), an http(s) URL, or a ``StoredVoice``.
        Raises a :class:`HonoraClientError` subclass on any failure.
        """
        return self._synthesis.synthesize(
            text, voice, language, voice_sha256=voice_sha256, format=format,
            sample_rate=sample_rate, delivery=delivery, params=params, request_id=request_id,
            deadline_s=deadline_s,
        )

    def synthesize_batch(
        self,
        sections: Iterable[SectionRequest | Mapping[str, Any] | str],
        *,
        voice: Any = None,
        language: str = "en",
        format: str = "wav",
        sample_rate: int | None = None,
        params: SynthesisParams | Mapping[str, Any] | None = None,
        sections_per_job: int = 1,
        concurrency: int = 4,
        deadline_s: float | None = None,
        progress: bool = False,
    ) -> BatchResult:
        """Synthesize many sections in parallel jobs and return every section's outcome.

        Each job carries ``sections_per_job`` sections (1: one simple job per section, spread
        over the workers; more: the worker's batch mode, which keeps one voice's latents warm).
        A failed section does not stop the others; its outcome holds the typed error.
        ``progress`` shows a progress bar (tqdm) on stderr.
        """
        defaults = BatchDefaults(
            voice=voice, language=language, format=format, sample_rate=sample_rate,
            params=params, deadline_s=deadline_s, sections_per_job=sections_per_job,
        )
        return self._batch.synthesize_batch(
            sections, defaults, concurrency=concurrency, progress=progress
        )

    def synthesize_stream(
        self,
        text: str,
        voice: Any = None,
        language: str = "en",
        *,
        voice_sha256: str | None = None,
        format: str = "wav",
        params: SynthesisParams | Mapping[str, Any] | None = None,
        request_id: str | None = None,
        deadline_s: float | None = None,
    ) -> SynthesisStream:
        """Start a streaming synthesis (needs a streaming worker, ``HONORA_STREAMING=1``).

        Iterate the returned stream for :class:`AudioChunk` objects as they arrive; afterwards
        ``stream.result`` holds the whole audio and ``stream.time_to_first_audio_ms`` the
        latency to the first chunk. Leaving the loop early cancels the job.
        """
        return self._synthesis.synthesize_stream(
            text, voice, language, voice_sha256=voice_sha256, format=format, params=params,
            request_id=request_id, deadline_s=deadline_s,
        )

    def health_job(
        self,
        *,
        min_handler_version: int | None = None,
        request_id: str | None = None,
        deadline_s: float | None = None,
    ) -> HealthReport:
        """Run one health job: which build answers and whether its model is loaded."""
        return self._health.job(
            min_handler_version=min_handler_version, request_id=request_id,
            deadline_s=deadline_s,
        )

    def census(
        self,
        probes: int = 8,
        *,
        min_handler_version: int | None = None,
        deadline_s: float | None = None,
        include_endpoint_health: bool = True,
    ) -> Census:
        """Send ``probes`` health jobs at once and report which builds answered them, so that
        stale or half-rolled deployments show up. Stale answers are grouped, not raised."""
        return self._census.census(
            probes, min_handler_version=min_handler_version, deadline_s=deadline_s,
            include_endpoint_health=include_endpoint_health,
        )
