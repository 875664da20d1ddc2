"""The RunPod endpoint client: RunPod's operations plus honora's synthesis calls.

Synthesis submits with ``POST /run`` and polls ``GET /status`` (50 ms at first, growing to
250 ms; on localpod this finishes within about 25 ms of ``/runsync``): a lost poll is simply
polled again, whereas a lost ``/runsync`` answer would leave a job running that nobody can find. Every job has a deadline; a job still running at its deadline is
cancelled and :class:`JobTimedOut` is raised. Health jobs do no work, so nothing is lost with a
lost answer: they use ``/runsync``, answered the moment the job ends (polling added about half a
poll interval, 25 to 60 ms, to every probe).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Self

import httpx

from honora_tts.client import _constants as C
from honora_tts.client._base_client import BaseClient, RetryPolicy, new_request_id
from honora_tts.client._configuration import settings_from_env
from honora_tts.client._deadline import Deadline
from honora_tts.client._exceptions import (
    EndpointUnavailable,
    HonoraClientError,
    InvalidRequest,
    InvalidResponse,
    JobFailed,
    JobTimedOut,
    StaleWorkerError,
    interpret,
)
from honora_tts.client._redaction import install_redaction
from honora_tts.client._voice_upload import VoiceUploader
from honora_tts.client.results import (
    BatchResult,
    Census,
    CensusProbe,
    EndpointHealth,
    HealthReport,
    JobStatus,
    SectionOutcome,
    SectionRequest,
    SynthesisResult,
    Timings,
    group_probes,
)
from honora_tts.client.streaming import SynthesisStream
from honora_tts.protocol import (
    HANDLER_VERSION,
    AudioPayload,
    ErrorInfo,
    OutputSpec,
    Section,
    SectionResult,
    SynthesisParams,
    SynthesisResponse,
    SynthesizeRequest,
    parse_request,
)

log = install_redaction(logging.getLogger("honora_tts.client"))

_CANCEL_DEADLINE_S = 10.0
_RUNSYNC_READ_S = 100.0
#: A waiting ``/runsync`` asks RunPod to answer this long before the deadline (or the read
#: timeout), so that its answer, not a timeout, ends the wait.
_RUNSYNC_MARGIN_MS = 1_000


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
    ) -> None:
        """``voice_store``: an object with ``upload(path) -> StoredVoice`` (default: the one
        ``honora_tts.voices.voice_store_from_env()`` returns, made on first use).
        ``transport`` and ``sleep`` replace httpx's transport and ``time.sleep`` (tests)."""
        self._base = BaseClient(
            api_base=api_base, endpoint_id=endpoint_id, api_key=api_key, timeout=timeout,
            retry=retry, transport=transport, sleep=sleep,
        )
        self._download = httpx.Client(timeout=timeout, transport=transport, follow_redirects=True)
        self.deadline_s = deadline_s
        self.min_handler_version = min_handler_version
        self._voices = VoiceUploader((lambda: voice_store) if voice_store is not None else None)
        self.source = "arguments"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> EndpointClient:
        """A client for ``RUNPOD_ENDPOINT_ID``/``RUNPOD_API_KEY``/``RUNPOD_API_BASE``. Without an
        endpoint id it uses a running localpod, else starts one for this process (noise audio
        from a tiny random-weights model; a loud warning says so)."""
        settings = settings_from_env(os.environ if env is None else env)
        client = cls(settings.endpoint_id, settings.api_key, settings.api_base, **kwargs)
        client.source = settings.source
        return client

    @property
    def endpoint_id(self) -> str:
        return self._base.endpoint_id

    @property
    def api_base(self) -> str:
        return self._base.api_base

    def __repr__(self) -> str:
        return f"EndpointClient({self._base!r}, source={self.source!r})"

    def close(self) -> None:
        """Close the HTTP connections (and a voice store this client made)."""
        self._base.close()
        self._download.close()
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
        body, request_id = _job_body(input, request_id, policy, webhook)
        payload = self._base.request(
            "POST", "run", body=body, request_id=request_id, submits_job=True,
            payload_limit=C.RUN_PAYLOAD_LIMIT_BYTES,
        )
        return self._job_status(payload, request_id=request_id)

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
        body, request_id = _job_body(input, request_id, policy, None)
        params = None
        if wait_ms is not None:
            params = {"wait": min(max(int(wait_ms), C.RUNSYNC_WAIT_MIN_MS), C.RUNSYNC_WAIT_MAX_MS)}
        base = self._base
        timeout = httpx.Timeout(
            connect=base.timeout.connect, read=max(base.timeout.read or 0.0, _RUNSYNC_READ_S),
            write=base.timeout.write, pool=base.timeout.pool,
        )
        payload = base.request(
            "POST", "runsync", body=body, params=params, request_id=request_id,
            submits_job=True, payload_limit=C.RUNSYNC_PAYLOAD_LIMIT_BYTES, timeout=timeout,
        )
        return self._job_status(payload, request_id=request_id)

    def status(
        self, job_id: str, *, request_id: str | None = None, deadline: Deadline | None = None
    ) -> JobStatus:
        """``GET /status/{job_id}`` (retried on transient failures)."""
        payload = self._base.request(
            "GET", f"status/{job_id}", request_id=request_id, deadline=deadline, job_id=job_id
        )
        return self._job_status(payload, job_id=job_id, request_id=request_id)

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
        deadline = Deadline(self.deadline_s if deadline_s is None else deadline_s)
        for _, outputs in self._stream_polls(job_id, request_id, deadline):
            yield from outputs

    def cancel(self, job_id: str, *, request_id: str | None = None) -> JobStatus:
        """``POST /cancel/{job_id}``; idempotent, so retried on transient failures."""
        payload = self._base.request(
            "POST", f"cancel/{job_id}", request_id=request_id, job_id=job_id,
            deadline=Deadline(_CANCEL_DEADLINE_S),
        )
        return self._job_status(payload, job_id=job_id, request_id=request_id)

    def purge_queue(self) -> dict[str, Any]:
        """``POST /purge-queue``: drop every queued job (running jobs go on)."""
        payload = self._base.request("POST", "purge-queue", deadline=Deadline(_CANCEL_DEADLINE_S))
        return payload if isinstance(payload, dict) else {"result": payload}

    def health(self) -> EndpointHealth:
        """``GET /health``: job and worker counts by state."""
        payload = self._base.request("GET", "health")
        if not isinstance(payload, dict):
            raise InvalidResponse(f"GET /health answered {type(payload).__name__}, not an object")
        return EndpointHealth.from_api(payload)

    def wait(
        self,
        job_id: str,
        *,
        request_id: str | None = None,
        deadline_s: float | None = None,
    ) -> JobStatus:
        """Poll ``/status`` until the job is final. At the deadline the job is cancelled and
        :class:`JobTimedOut` raised."""
        deadline = Deadline(self.deadline_s if deadline_s is None else deadline_s)
        status, _ = self._wait(job_id, request_id, deadline)
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
        deadline = Deadline(self.deadline_s if deadline_s is None else deadline_s)
        request_id = request_id or new_request_id()
        reference = self._voices.resolve(voice, voice_sha256)
        request = _request(
            request_id=request_id, text=text, voice_url=reference.url,
            voice_sha256=reference.sha256, language=language,
            output=_output_spec(format, sample_rate, delivery), params=_params(params),
        )
        job_input = _validated(request.to_input(), request_id)
        status, timing = self._execute(job_input, request_id, deadline)
        response = interpret(
            status, request_id=request_id, min_handler_version=self.min_handler_version
        )
        if response.audio is None:
            raise InvalidResponse("the worker answered without audio", request_id=request_id,
                                  job_id=status.id)
        result = self._result(
            response, response.audio, status, timing, deadline, request_id,
            timings=response.timings, cache=response.cache, text_chars=response.text_chars,
            pieces=response.pieces,
        )
        log.info(
            "request %s job %s: %.2fs of %s audio from worker %s in %.0f ms "
            "(queue %s ms, execution %s ms)", request_id, status.id, result.duration_s,
            result.format, result.worker_id, result.timings.client_ms, status.delay_ms,
            status.execution_ms,
        )
        return result

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
        from tqdm import tqdm

        items = [SectionRequest.coerce(item, i) for i, item in enumerate(sections)]
        if sections_per_job < 1 or concurrency < 1:
            raise InvalidRequest("sections_per_job and concurrency must be at least 1")
        chunks = [
            list(range(start, min(start + sections_per_job, len(items))))
            for start in range(0, len(items), sections_per_job)
        ]
        outcomes: dict[int, SectionOutcome] = {}
        started = time.perf_counter()
        common = {
            "voice": voice, "language": language, "format": format,
            "sample_rate": sample_rate, "params": params, "deadline_s": deadline_s,
            "batch_mode": sections_per_job > 1,
        }
        with (
            tqdm(total=len(items), disable=not progress, unit="section", desc="synthesize") as bar,
            ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(chunks) or 1))) as pool,
        ):
            futures = {
                pool.submit(self._synthesize_chunk, items, chunk, common): chunk
                for chunk in chunks
            }
            for future in as_completed(futures):
                for outcome in future.result():
                    outcomes[outcome.index] = outcome
                bar.update(len(futures[future]))
        ordered = [outcomes[i] for i in range(len(items))]
        return BatchResult(outcomes=ordered, client_ms=(time.perf_counter() - started) * 1000)

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
        deadline = Deadline(self.deadline_s if deadline_s is None else deadline_s)
        request_id = request_id or new_request_id()
        reference = self._voices.resolve(voice, voice_sha256)
        request = _request(
            request_id=request_id, text=text, voice_url=reference.url,
            voice_sha256=reference.sha256, language=language, stream=True,
            output=_output_spec(format, None, "base64"), params=_params(params),
        )
        job_input = _validated(request.to_input(), request_id)
        return SynthesisStream(self, job_input, request_id, deadline, format)

    def health_job(
        self,
        *,
        min_handler_version: int | None = None,
        request_id: str | None = None,
        deadline_s: float | None = None,
    ) -> HealthReport:
        """Run one health job: which build answers and whether its model is loaded."""
        deadline = Deadline(C.DEFAULT_HEALTH_DEADLINE_S if deadline_s is None else deadline_s)
        request_id = request_id or new_request_id()
        job_input = _request(action="health", request_id=request_id).to_input()
        status, timing = self._execute(job_input, request_id, deadline, waiting=True)
        response = interpret(
            status, request_id=request_id,
            min_handler_version=(
                self.min_handler_version if min_handler_version is None else min_handler_version
            ),
        )
        return HealthReport(
            status=response.status,
            version=response.version,
            request_id=request_id,
            job_id=status.id,
            worker_id=status.worker_id or response.version.worker_id,
            health=response.health or {},
            timings=Timings(
                client_ms=deadline.elapsed_ms(), delay_ms=status.delay_ms,
                execution_ms=status.execution_ms, submit_ms=timing["submit_ms"],
                polls=timing["polls"],
            ),
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
        if probes < 1:
            raise InvalidRequest("census needs at least one probe")
        minimum = self.min_handler_version if min_handler_version is None else min_handler_version
        with ThreadPoolExecutor(max_workers=min(probes, 32)) as pool:
            futures = [
                pool.submit(self._probe, minimum, deadline_s) for _ in range(probes)
            ]
            results = [f.result() for f in futures]
        endpoint_health = None
        if include_endpoint_health:
            try:
                endpoint_health = self.health()
            except HonoraClientError as exc:
                log.warning("GET /health failed during the census: %s", exc)
        return Census(
            probes=results, groups=group_probes(results), min_handler_version=minimum,
            endpoint_health=endpoint_health,
        )

    # ------------------------------------------------------------------- internals

    def _probe(self, min_handler_version: int, deadline_s: float | None) -> CensusProbe:
        request_id = new_request_id()
        started = time.perf_counter()

        def elapsed() -> float:
            return (time.perf_counter() - started) * 1000

        try:
            report = self.health_job(
                min_handler_version=min_handler_version, request_id=request_id,
                deadline_s=deadline_s,
            )
        except StaleWorkerError as exc:
            return CensusProbe(
                request_id=request_id, job_id=exc.job_id, worker_id=exc.worker_id,
                version=exc.version, stale_reason=exc.seen, client_ms=elapsed(),
            )
        except JobFailed as exc:
            return CensusProbe(
                request_id=request_id, job_id=exc.job_id,
                worker_id=exc.worker_id or (exc.version.worker_id if exc.version else None),
                version=exc.version,
                error=f"{exc.code}: {exc.worker_message}", client_ms=elapsed(),
            )
        except HonoraClientError as exc:
            return CensusProbe(
                request_id=request_id, job_id=exc.job_id, worker_id=None, version=None,
                error=f"{type(exc).__name__}: {exc}", client_ms=elapsed(),
            )
        return CensusProbe(
            request_id=request_id, job_id=report.job_id, worker_id=report.worker_id,
            version=report.version, client_ms=elapsed(),
        )

    def _synthesize_chunk(
        self, items: list[SectionRequest], chunk: list[int], common: dict[str, Any]
    ) -> list[SectionOutcome]:
        if not common["batch_mode"]:
            index = chunk[0]
            item = items[index]
            try:
                result = self.synthesize(
                    item.text, item.voice if item.voice is not None else common["voice"],
                    item.language or common["language"], format=common["format"],
                    sample_rate=common["sample_rate"], params=common["params"],
                    deadline_s=common["deadline_s"],
                )
            except HonoraClientError as exc:
                return [SectionOutcome(id=item.id, index=index, error=exc)]
            return [SectionOutcome(
                id=item.id, index=index, result=_with_section(result, item.id)
            )]
        try:
            return self._synthesize_sections(items, chunk, common)
        except HonoraClientError as exc:
            return [SectionOutcome(id=items[i].id, index=i, error=exc) for i in chunk]

    def _synthesize_sections(
        self, items: list[SectionRequest], chunk: list[int], common: dict[str, Any]
    ) -> list[SectionOutcome]:
        deadline = Deadline(self.deadline_s if common["deadline_s"] is None
                            else common["deadline_s"])
        request_id = new_request_id()
        default_voice = self._voices.resolve(common["voice"])
        sections = []
        for index in chunk:
            item = items[index]
            reference = (
                self._voices.resolve(item.voice) if item.voice is not None else default_voice
            )
            try:
                sections.append(Section(
                    id=item.id, text=item.text, voice_url=reference.url,
                    voice_sha256=reference.sha256, language=item.language,
                ))
            except ValueError as exc:
                raise InvalidRequest(f"section {item.id!r}: {exc}", request_id=request_id) from exc
        request = _request(
            request_id=request_id, sections=sections, language=common["language"],
            voice_url=default_voice.url, voice_sha256=default_voice.sha256,
            output=_output_spec(common["format"], common["sample_rate"], "auto"),
            params=_params(common["params"]),
        )
        job_input = _validated(request.to_input(), request_id)
        status, timing = self._execute(job_input, request_id, deadline)
        response = interpret(
            status, request_id=request_id, min_handler_version=self.min_handler_version
        )
        by_id = {s.id: s for s in response.sections or []}
        outcomes = []
        for index in chunk:
            item = items[index]
            section = by_id.get(item.id)
            outcomes.append(
                self._section_outcome(item, index, section, response, status, timing, deadline)
            )
        return outcomes

    def _section_outcome(
        self,
        item: SectionRequest,
        index: int,
        section: SectionResult | None,
        response: SynthesisResponse,
        status: JobStatus,
        timing: dict[str, Any],
        deadline: Deadline,
    ) -> SectionOutcome:
        ids = {"request_id": response.request_id, "job_id": status.id}
        if section is None:
            error: HonoraClientError = InvalidResponse(
                f"the worker's batch answer has no section {item.id!r}", **ids
            )
            return SectionOutcome(id=item.id, index=index, error=error)
        if section.status == "error" or section.audio is None:
            info = section.error or ErrorInfo(code="internal_error", message="no audio")
            error = JobFailed(info.code.value, info.message, field=info.field,
                              version=response.version, status=status.status, **ids)
            return SectionOutcome(id=item.id, index=index, error=error)
        try:
            result = self._result(
                response, section.audio, status, timing, deadline, response.request_id or "",
                timings=section.timings, cache=section.cache, text_chars=section.text_chars,
                pieces=section.pieces, section_id=item.id,
            )
        except HonoraClientError as exc:
            return SectionOutcome(id=item.id, index=index, error=exc)
        return SectionOutcome(id=item.id, index=index, result=result)

    def _execute(
        self, job_input: dict[str, Any], request_id: str, deadline: Deadline, *,
        waiting: bool = False,
    ) -> tuple[JobStatus, dict[str, Any]]:
        """Submit with ``/run`` (``waiting``: ``/runsync``, only for jobs that do no work) and
        poll to a final state. Returns the final status and ``{"submit_ms", "polls"}``."""
        first, submit_ms = self._submit(job_input, request_id, deadline, waiting=waiting)
        if first.is_final:
            return first, {"submit_ms": submit_ms, "polls": 0}
        status, polls = self._wait(first.id, request_id, deadline)
        return status, {"submit_ms": submit_ms, "polls": polls}

    def _submit(
        self, job_input: dict[str, Any], request_id: str, deadline: Deadline, *,
        waiting: bool = False,
    ) -> tuple[JobStatus, float]:
        """``POST /run`` with a policy derived from the deadline; returns the job and the
        milliseconds the submission took. ``waiting``: ``POST /runsync``, held open until the
        job ends or shortly before the deadline (then polled like a ``/run`` job)."""
        submitted = time.perf_counter()
        body, _ = _job_body(job_input, request_id, _policy(deadline), None)
        route, params, timeout = "run", None, None
        if waiting:
            left = deadline.ms_left()
            wait_ms = C.RUNSYNC_WAIT_MAX_MS if left is None else left - _RUNSYNC_MARGIN_MS
            wait_ms = min(max(wait_ms, C.RUNSYNC_WAIT_MIN_MS), C.RUNSYNC_WAIT_MAX_MS)
            route, params = "runsync", {"wait": wait_ms}
            base = self._base.timeout
            timeout = httpx.Timeout(
                connect=base.connect, read=wait_ms / 1000 + _RUNSYNC_MARGIN_MS / 1000,
                write=base.write, pool=base.pool,
            )
        payload = self._base.request(
            "POST", route, body=body, params=params, request_id=request_id, submits_job=True,
            payload_limit=C.RUN_PAYLOAD_LIMIT_BYTES, deadline=deadline, timeout=timeout,
        )
        first = self._job_status(payload, request_id=request_id)
        if not first.id:
            raise InvalidResponse(
                f"POST /{route} answered without a job id: {str(payload)[:200]}",
                request_id=request_id,
            )
        log.info("request %s: job %s submitted (%s)", request_id, first.id, first.status)
        return first, (time.perf_counter() - submitted) * 1000

    def _wait(
        self, job_id: str, request_id: str | None, deadline: Deadline
    ) -> tuple[JobStatus, int]:
        delay = C.POLL_INITIAL_S
        polls = 0
        last: JobStatus | None = None
        try:
            while True:
                last = self.status(job_id, request_id=request_id, deadline=deadline)
                polls += 1
                if last.is_final:
                    return last, polls
                left = deadline.remaining()
                if left is not None and left <= 0:
                    raise self._give_up(job_id, request_id, deadline, last)
                self._base.sleep(delay if left is None else min(delay, left))
                delay = min(delay * C.POLL_GROWTH, C.POLL_MAX_S)
        except JobTimedOut:
            raise
        except EndpointUnavailable as exc:
            if deadline.expired:
                raise self._give_up(job_id, request_id, deadline, last) from exc
            self._cancel_quietly(job_id, request_id)
            raise
        except BaseException:
            self._cancel_quietly(job_id, request_id)
            raise

    def _stream_polls(
        self, job_id: str, request_id: str | None, deadline: Deadline
    ) -> Iterator[tuple[str, list[Any]]]:
        """Poll ``/stream`` until the job is final: yields (status, new outputs)."""
        delay = C.POLL_INITIAL_S
        finished = False
        try:
            while True:
                payload = self._base.request(
                    "GET", f"stream/{job_id}", request_id=request_id, deadline=deadline,
                    job_id=job_id,
                )
                if not isinstance(payload, dict):
                    raise InvalidResponse(
                        f"GET /stream answered {type(payload).__name__}, not an object",
                        request_id=request_id, job_id=job_id,
                    )
                state = str(payload.get("status") or "UNKNOWN")
                items = payload.get("stream") or []
                outputs = [i.get("output") if isinstance(i, dict) else i for i in items]
                if state in C.FINAL_STATES and not outputs:
                    finished = True
                    return
                yield state, outputs
                if outputs:
                    delay = C.POLL_INITIAL_S
                    continue
                left = deadline.remaining()
                if left is not None and left <= 0:
                    finished = True
                    raise self._give_up(job_id, request_id, deadline, None, state)
                self._base.sleep(delay if left is None else min(delay, left))
                delay = min(delay * C.POLL_GROWTH, C.POLL_MAX_S)
        finally:
            if not finished:
                self._cancel_quietly(job_id, request_id)

    def _give_up(
        self,
        job_id: str,
        request_id: str | None,
        deadline: Deadline,
        last: JobStatus | None,
        state: str | None = None,
    ) -> JobTimedOut:
        cancelled = self._cancel_quietly(job_id, request_id)
        state = state or (last.status if last else "unknown")
        advice = {
            "IN_QUEUE": "no worker took it: check that the endpoint has running workers "
            "(max workers > 0) and is not saturated",
            "IN_PROGRESS": "the worker was still synthesizing: raise deadline_s or send "
            "less text per job",
        }.get(state, "raise deadline_s or check the endpoint")
        return JobTimedOut(
            f"the job did not finish within its {deadline.seconds:g} s deadline (last state "
            f"{state}; {advice}); it was {'cancelled' if cancelled else 'NOT cancelled: cancel '}"
            f"{'' if cancelled else 'it in the RunPod console'}",
            cancelled=cancelled, status=state, request_id=request_id, job_id=job_id,
        )

    def _cancel_quietly(self, job_id: str, request_id: str | None) -> bool:
        try:
            self.cancel(job_id, request_id=request_id)
        except HonoraClientError as exc:
            log.warning("request %s: could not cancel job %s: %s", request_id, job_id, exc)
            return False
        log.warning("request %s: job %s cancelled", request_id, job_id)
        return True

    def _job_status(
        self, payload: Any, *, job_id: str | None = None, request_id: str | None = None
    ) -> JobStatus:
        if not isinstance(payload, dict):
            raise InvalidResponse(
                f"the endpoint answered {type(payload).__name__}, not a job object",
                request_id=request_id, job_id=job_id,
            )
        return JobStatus.from_api(payload, job_id)

    def _result(
        self,
        response: SynthesisResponse,
        payload: AudioPayload,
        status: JobStatus,
        timing: dict[str, Any],
        deadline: Deadline,
        request_id: str,
        **details: Any,
    ) -> SynthesisResult:
        audio = self._audio_bytes(payload, request_id, status.id, deadline)
        return SynthesisResult(
            audio=audio,
            format=payload.format,
            sample_rate=payload.sample_rate,
            duration_s=payload.duration_s,
            request_id=request_id,
            job_id=status.id,
            worker_id=status.worker_id or response.version.worker_id,
            version=response.version,
            timings=Timings(
                client_ms=deadline.elapsed_ms(), delay_ms=status.delay_ms,
                execution_ms=status.execution_ms, submit_ms=timing["submit_ms"],
                polls=timing["polls"], stages=details.pop("timings", None),
            ),
            audio_sha256=payload.sha256,
            language=response.language,
            **details,
        )

    def _audio_bytes(
        self, payload: AudioPayload, request_id: str, job_id: str, deadline: Deadline
    ) -> bytes:
        ids = {"request_id": request_id, "job_id": job_id}
        if payload.delivery == "base64":
            try:
                data = base64.b64decode(payload.base64 or "", validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InvalidResponse(f"the audio is not valid base64: {exc}", **ids) from exc
        elif payload.url:
            data = self._download_audio(payload.url, ids, deadline)
        else:
            raise InvalidResponse("the audio payload has neither base64 nor a URL", **ids)
        if payload.sha256 and hashlib.sha256(data).hexdigest() != payload.sha256:
            raise InvalidResponse(
                f"the audio's sha256 does not match the worker's ({len(data)} bytes received, "
                f"{payload.bytes} sent): it was damaged on the way. Send the request again.",
                **ids,
            )
        return data

    def _download_audio(self, url: str, ids: dict[str, str], deadline: Deadline) -> bytes:
        attempts = self._base.retry.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                response = self._download.get(url, timeout=deadline.clip(self._base.timeout))
            except httpx.TransportError as exc:
                if attempt == attempts or deadline.expired:
                    raise EndpointUnavailable(
                        f"could not download the audio: {type(exc).__name__}", **ids
                    ) from exc
            else:
                if response.status_code < 300:
                    return response.content
                if response.status_code not in C.RETRYABLE_STATUS_CODES or attempt == attempts:
                    raise InvalidResponse(
                        f"the audio URL answered {response.status_code}; the output bucket may "
                        "have expired it or refuse this client", **ids,
                    )
            self._base.sleep(min(C.RETRY_MAX_DELAY_S, C.RETRY_INITIAL_DELAY_S * 2 ** attempt))
        raise AssertionError("unreachable")


# ---------------------------------------------------------------------------- requests


def _job_body(
    input: Mapping[str, Any],
    request_id: str | None,
    policy: Mapping[str, Any] | None,
    webhook: str | None,
) -> tuple[dict[str, Any], str]:
    job_input = dict(input)
    request_id = request_id or job_input.get("request_id") or new_request_id()
    job_input["request_id"] = request_id
    body: dict[str, Any] = {"input": job_input}
    if policy:
        body["policy"] = dict(policy)
    if webhook:
        body["webhook"] = webhook
    return body, request_id


def _policy(deadline: Deadline) -> dict[str, int] | None:
    left = deadline.ms_left()
    if left is None:
        return None
    execution = min(max(left, C.EXECUTION_TIMEOUT_MIN_MS), C.EXECUTION_TIMEOUT_MAX_MS)
    ttl = min(max(left + C.TTL_MARGIN_MS, C.TTL_MIN_MS), C.EXECUTION_TIMEOUT_MAX_MS)
    return {"executionTimeout": execution, "ttl": ttl}


def _request(**fields: Any) -> SynthesizeRequest:
    try:
        return SynthesizeRequest(**fields)
    except ValueError as exc:
        raise InvalidRequest(
            f"invalid request: {exc}", request_id=fields.get("request_id")
        ) from exc


def _output_spec(format: str, sample_rate: int | None, delivery: str) -> OutputSpec:
    values: dict[str, Any] = {"format": format, "delivery": delivery}
    if sample_rate is not None:
        values["sample_rate"] = sample_rate
    try:
        return OutputSpec(**values)
    except ValueError as exc:
        raise InvalidRequest(f"invalid output settings: {exc}") from exc


def _params(params: SynthesisParams | Mapping[str, Any] | None) -> SynthesisParams:
    if params is None:
        return SynthesisParams()
    if isinstance(params, SynthesisParams):
        return params
    try:
        return SynthesisParams(**params)
    except ValueError as exc:
        raise InvalidRequest(f"invalid synthesis params: {exc}") from exc


def _validated(job_input: dict[str, Any], request_id: str) -> dict[str, Any]:
    """Check the request as the worker will, so that a bad one costs no GPU job."""
    parsed = parse_request(job_input)
    if isinstance(parsed, ErrorInfo):
        raise InvalidRequest(
            f"{parsed.code.value}: {parsed.message}", code=parsed.code.value,
            request_id=request_id,
        )
    invalid = getattr(parsed, "invalid_sections", [])
    if invalid:
        first = invalid[0]
        raise InvalidRequest(
            f"section {first.id!r}: {first.error.code.value}: {first.error.message}",
            code=first.error.code.value, request_id=request_id,
        )
    return job_input


def _with_section(result: SynthesisResult, section_id: str) -> SynthesisResult:
    from dataclasses import replace

    return replace(result, section_id=section_id)

