"""What the endpoint client returns: job states, synthesis results, batches, health reports
(the census's are :mod:`honora_tts.client.census_report`'s)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from honora_tts.client._constants import FINAL_STATES
from honora_tts.files import write_atomically
from honora_tts.protocol import CacheFacts, StageTimings, VersionRecord

if TYPE_CHECKING:
    import numpy as np

    from honora_tts.client._exceptions import HonoraClientError


@dataclass(frozen=True)
class JobStatus:
    """One answer of ``/run``, ``/runsync``, ``/status`` or ``/cancel``."""

    id: str
    status: str
    delay_ms: float | None = None
    execution_ms: float | None = None
    output: Any = None
    error: Any = None
    worker_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATES

    @classmethod
    def from_api(cls, payload: dict[str, Any], job_id: str | None = None) -> JobStatus:
        """Read RunPod's job object (``id``, ``status``, ``delayTime``, ``executionTime``...)."""
        return cls(
            id=str(payload.get("id") or job_id or ""),
            status=str(payload.get("status") or "UNKNOWN"),
            delay_ms=_number(payload.get("delayTime")),
            execution_ms=_number(payload.get("executionTime")),
            output=payload.get("output"),
            error=payload.get("error"),
            worker_id=payload.get("workerId") or None,
            raw=payload,
        )


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


@dataclass(frozen=True)
class EndpointHealth:
    """``GET /health``: job counts by state and worker counts by state."""

    jobs: dict[str, int]
    workers: dict[str, int]
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, payload: dict[str, Any]) -> EndpointHealth:
        def counts(key: str) -> dict[str, int]:
            value = payload.get(key)
            if not isinstance(value, dict):
                return {}
            return {str(k): int(v) for k, v in value.items() if isinstance(v, (int, float))}

        return cls(jobs=counts("jobs"), workers=counts("workers"), raw=payload)


@dataclass(frozen=True)
class Timings:
    """Where the time of one job went, in milliseconds.

    ``client_ms`` is what the caller waited (submit to decoded audio); ``delay_ms`` is RunPod's
    queue time and ``execution_ms`` the worker's; ``stages`` are the worker's own stage timings.
    """

    client_ms: float
    delay_ms: float | None = None
    execution_ms: float | None = None
    submit_ms: float | None = None
    polls: int = 0
    stages: StageTimings | None = None
    time_to_first_audio_ms: float | None = None

    @property
    def overhead_ms(self) -> float | None:
        """Client time not spent queued or executing: HTTP, polling granularity, decoding."""
        if self.delay_ms is None or self.execution_ms is None:
            return None
        return self.client_ms - self.delay_ms - self.execution_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "client_ms": round(self.client_ms, 2),
            "delay_ms": self.delay_ms,
            "execution_ms": self.execution_ms,
            "submit_ms": None if self.submit_ms is None else round(self.submit_ms, 2),
            "overhead_ms": None if self.overhead_ms is None else round(self.overhead_ms, 2),
            "polls": self.polls,
            "time_to_first_audio_ms": self.time_to_first_audio_ms,
            "stages": self.stages.model_dump() if self.stages else None,
        }


@dataclass(frozen=True)
class SynthesisResult:
    """Encoded audio plus everything known about how it was made."""

    audio: bytes = field(repr=False)
    format: str
    sample_rate: int
    duration_s: float
    request_id: str
    job_id: str | None
    worker_id: str | None
    version: VersionRecord
    timings: Timings
    cache: CacheFacts | None = None
    audio_sha256: str | None = None
    language: str | None = None
    text_chars: int | None = None
    pieces: int | None = None
    section_id: str | None = None

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the audio to ``path`` atomically (a temporary file, then a rename)."""
        return write_atomically(Path(path), self.audio)

    def samples(self) -> tuple[np.ndarray, int]:
        """Decoded float32 mono samples and their sample rate."""
        from honora_tts import audio

        return audio.decode(self.audio)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the audio bytes, JSON-ready."""
        return {
            "request_id": self.request_id,
            "job_id": self.job_id,
            "worker_id": self.worker_id,
            "section_id": self.section_id,
            "format": self.format,
            "sample_rate": self.sample_rate,
            "duration_s": self.duration_s,
            "bytes": len(self.audio),
            "audio_sha256": self.audio_sha256,
            "language": self.language,
            "text_chars": self.text_chars,
            "pieces": self.pieces,
            "version": self.version.model_dump(mode="json"),
            "timings": self.timings.to_dict(),
            "cache": self.cache.model_dump() if self.cache else None,
        }


@dataclass(frozen=True)
class SectionRequest:
    """One item of :meth:`EndpointClient.synthesize_batch`. ``voice``: as for ``synthesize``."""

    id: str
    text: str
    voice: Any = None
    language: str | None = None

    @classmethod
    def coerce(cls, item: Any, index: int) -> SectionRequest:
        """Accept a SectionRequest, a dict ``{id?, text, voice?, language?}`` or plain text."""
        if isinstance(item, SectionRequest):
            return item
        if isinstance(item, str):
            return cls(id=str(index), text=item)
        if isinstance(item, dict):
            text = item.get("text", item.get("content"))
            if not isinstance(text, str):
                raise TypeError(f"section {index} has no text")
            return cls(
                id=str(item.get("id", item.get("section_id", index))),
                text=text,
                voice=item.get("voice", item.get("voice_url")),
                language=item.get("language", item.get("lang")),
            )
        raise TypeError(f"section {index}: expected text, a dict or SectionRequest, got {item!r}")


@dataclass(frozen=True)
class SectionOutcome:
    """The result or the error of one section of a batch."""

    id: str
    index: int
    result: SynthesisResult | None = None
    error: HonoraClientError | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None


@dataclass(frozen=True)
class BatchResult:
    """Outcomes in the order of the sections given."""

    outcomes: list[SectionOutcome]
    client_ms: float

    def __iter__(self) -> Iterator[SectionOutcome]:
        return iter(self.outcomes)

    def __len__(self) -> int:
        return len(self.outcomes)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def succeeded(self) -> list[SectionOutcome]:
        return [o for o in self.outcomes if o.ok]

    @property
    def failed(self) -> list[SectionOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def save(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Write each successful section as ``{id}.{format}`` under ``directory``."""
        paths = []
        for outcome in self.succeeded:
            assert outcome.result is not None
            name = f"{_safe_name(outcome.id)}.{outcome.result.format}"
            paths.append(outcome.result.save(Path(directory) / name))
        return paths


def _safe_name(text: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text).strip(".")
    return cleaned or "section"


@dataclass(frozen=True)
class AudioChunk:
    """A piece of streamed audio: float32 mono samples as they arrived."""

    seq: int
    samples: np.ndarray = field(repr=False)
    sample_rate: int
    received_ms: float

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class HealthReport:
    """The answer to one health job: which build answered and how it is doing."""

    status: str
    version: VersionRecord
    request_id: str
    job_id: str | None
    worker_id: str | None
    health: dict[str, Any]
    timings: Timings

    def to_dict(self) -> dict[str, Any]:
        """The shape of ``engine.health_check()``."""
        return {
            "status": self.status,
            "version": self.version.model_dump(mode="json"),
            "worker_id": self.worker_id,
            "request_id": self.request_id,
            "job_id": self.job_id,
            "health": self.health,
            "timings": self.timings.to_dict(),
        }
