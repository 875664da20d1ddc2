"""Synthesis of many sections in parallel jobs: one section per job, or the worker's batch mode
(several sections per job, one voice's latents kept warm)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import Any

from honora_tts.client._base_client import Deadline, new_request_id
from honora_tts.client._exceptions import (
    HonoraClientError,
    InvalidRequest,
    InvalidResponse,
    JobFailed,
)
from honora_tts.client._requests import build_request, output_spec, synthesis_params, validated
from honora_tts.client.job_runner import JobTiming
from honora_tts.client.resources.synthesis import Synthesis
from honora_tts.client.results import BatchResult, JobStatus, SectionOutcome, SectionRequest
from honora_tts.protocol import (
    ErrorCode,
    ErrorInfo,
    Section,
    SectionResult,
    SynthesisParams,
    SynthesisResponse,
)


@dataclass(frozen=True)
class BatchDefaults:
    """What every section of a batch uses unless the section says otherwise."""

    voice: Any = None
    language: str = "en"
    format: str = "wav"
    sample_rate: int | None = None
    params: SynthesisParams | Mapping[str, Any] | None = None
    deadline_s: float | None = None
    sections_per_job: int = 1

    @property
    def batch_mode(self) -> bool:
        """Whether jobs carry several sections (the worker's batch mode)."""
        return self.sections_per_job > 1


class BatchSynthesis:
    """``synthesize_batch`` of :class:`EndpointClient`."""

    def __init__(self, synthesis: Synthesis) -> None:
        self.synthesis = synthesis

    def synthesize_batch(
        self,
        sections: Iterable[SectionRequest | Mapping[str, Any] | str],
        defaults: BatchDefaults,
        *,
        concurrency: int = 4,
        progress: bool = False,
    ) -> BatchResult:
        """Every section's outcome, in order; a failed section does not stop the others."""
        from tqdm import tqdm

        items = [SectionRequest.coerce(item, i) for i, item in enumerate(sections)]
        if defaults.sections_per_job < 1 or concurrency < 1:
            raise InvalidRequest("sections_per_job and concurrency must be at least 1")
        size = defaults.sections_per_job
        chunks = [
            list(range(start, min(start + size, len(items))))
            for start in range(0, len(items), size)
        ]
        outcomes: dict[int, SectionOutcome] = {}
        started = time.perf_counter()
        with (
            tqdm(total=len(items), disable=not progress, unit="section", desc="synthesize") as bar,
            ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(chunks) or 1))) as pool,
        ):
            futures = {
                pool.submit(self._chunk, items, chunk, defaults): chunk for chunk in chunks
            }
            for future in as_completed(futures):
                for outcome in future.result():
                    outcomes[outcome.index] = outcome
                bar.update(len(futures[future]))
        ordered = [outcomes[i] for i in range(len(items))]
        return BatchResult(outcomes=ordered, client_ms=(time.perf_counter() - started) * 1000)

    def _chunk(
        self, items: list[SectionRequest], chunk: list[int], defaults: BatchDefaults
    ) -> list[SectionOutcome]:
        if not defaults.batch_mode:
            index = chunk[0]
            item = items[index]
            try:
                result = self.synthesis.synthesize(
                    item.text, item.voice if item.voice is not None else defaults.voice,
                    item.language or defaults.language, format=defaults.format,
                    sample_rate=defaults.sample_rate, params=defaults.params,
                    deadline_s=defaults.deadline_s,
                )
            except HonoraClientError as exc:
                return [SectionOutcome(id=item.id, index=index, error=exc)]
            return [SectionOutcome(
                id=item.id, index=index, result=replace(result, section_id=item.id)
            )]
        try:
            return self._sections_job(items, chunk, defaults)
        except HonoraClientError as exc:
            return [SectionOutcome(id=items[i].id, index=i, error=exc) for i in chunk]

    def _sections_job(
        self, items: list[SectionRequest], chunk: list[int], defaults: BatchDefaults
    ) -> list[SectionOutcome]:
        synthesis = self.synthesis
        deadline = synthesis.jobs.deadline(defaults.deadline_s)
        request_id = new_request_id()
        default_voice = synthesis.voices.resolve(defaults.voice)
        sections = []
        for index in chunk:
            item = items[index]
            reference = (
                synthesis.voices.resolve(item.voice) if item.voice is not None else default_voice
            )
            try:
                sections.append(Section(
                    id=item.id, text=item.text, voice_url=reference.url,
                    voice_sha256=reference.sha256, language=item.language,
                ))
            except ValueError as exc:
                raise InvalidRequest(f"section {item.id!r}: {exc}", request_id=request_id) from exc
        request = build_request(
            request_id=request_id, sections=sections, language=defaults.language,
            voice_url=default_voice.url, voice_sha256=default_voice.sha256,
            output=output_spec(defaults.format, defaults.sample_rate, "auto"),
            params=synthesis_params(defaults.params),
        )
        job_input = validated(request.to_input(), request_id)
        status, timing = synthesis.jobs.execute(job_input, request_id, deadline)
        response = synthesis.responses.read(status, request_id)
        by_id = {s.id: s for s in response.sections or []}
        return [
            self._outcome(items[i], i, by_id.get(items[i].id), response, status, timing, deadline)
            for i in chunk
        ]

    def _outcome(
        self,
        item: SectionRequest,
        index: int,
        section: SectionResult | None,
        response: SynthesisResponse,
        status: JobStatus,
        timing: JobTiming,
        deadline: Deadline,
    ) -> SectionOutcome:
        ids = {"request_id": response.request_id, "job_id": status.id}
        if section is None:
            error: HonoraClientError = InvalidResponse(
                f"the worker's batch answer has no section {item.id!r}", **ids
            )
            return SectionOutcome(id=item.id, index=index, error=error)
        if section.status == "error" or section.audio is None:
            info = section.error or ErrorInfo(code=ErrorCode.INTERNAL_ERROR, message="no audio")
            error = JobFailed(info.code.value, info.message, field=info.field,
                              version=response.version, status=status.status, **ids)
            return SectionOutcome(id=item.id, index=index, error=error)
        try:
            result = self.synthesis.result(
                response, section.audio, status, timing, deadline, response.request_id or "",
                timings=section.timings, cache=section.cache, text_chars=section.text_chars,
                pieces=section.pieces, section_id=item.id,
            )
        except HonoraClientError as exc:
            return SectionOutcome(id=item.id, index=index, error=exc)
        return SectionOutcome(id=item.id, index=index, result=result)
