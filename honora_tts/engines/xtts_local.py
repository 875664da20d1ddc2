"""``xtts-local``: the same engine API, synthesizing in this process with the worker's own
:class:`~honora_tts.synthesis.SynthesisService` (on a model from ``honora_tts.model``).

Requests are validated by the worker's own protocol code; the voice is a local file (no upload),
its speaker latents are cached by content hash exactly as on a worker.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from honora_tts.client import InvalidRequest, JobFailed, SynthesisResult, Timings, new_request_id
from honora_tts.engines.base import SynthesisEngine, log
from honora_tts.files import file_sha256
from honora_tts.protocol import (
    ErrorInfo,
    SynthesisParams,
    SynthesizeRequest,
    WorkerError,
    parse_request,
)
from honora_tts.synthesis import SynthesisService, VoiceSample


def _default_loader(source: str | None) -> Any:
    from honora_tts.model import load_model

    return load_model(source)


class XttsLocalEngine(SynthesisEngine):
    """In-process XTTS. The model loads on first use (``model_source``: ``tiny``, ``xtts_v2``,
    a checkpoint directory, or the ``HONORA_XTTS_*`` environment); synthesis is serialised."""

    name = "xtts-local"

    def __init__(
        self,
        model: Any = None,
        *,
        model_source: str | None = None,
        loader: Callable[[str | None], Any] | None = None,
        voices_directory: Path | None = None,
    ) -> None:
        super().__init__(voices_directory=voices_directory)
        self._model = model
        self._source = model_source
        self._loader = loader or _default_loader
        self._lock = threading.Lock()
        self._service: SynthesisService | None = None

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._loader(self._source)
            return self._model

    @property
    def service(self) -> SynthesisService:
        """The synthesis pipeline around :attr:`model` (loaded on first use); local voices
        only, so it has no voice cache."""
        model = self.model
        with self._lock:
            if self._service is None:
                self._service = SynthesisService(model)
            return self._service

    def synthesize(
        self,
        text: str,
        voice: Any = None,
        language: str = "en",
        *,
        format: str = "wav",
        sample_rate: int | None = None,
        params: SynthesisParams | Mapping[str, Any] | None = None,
        request_id: str | None = None,
        **_: Any,
    ) -> SynthesisResult:
        """Synthesize in process; raises InvalidRequest or JobFailed (with the protocol's
        error code) like the remote engine."""
        from honora_tts.version import version_record

        started = time.perf_counter()
        request_id = request_id or new_request_id()
        request = self._validated(text, language, format, sample_rate, params, request_id)
        try:
            service = self.service
            voice = self._voice(voice, service)
            with self._lock:
                rendered = service.render(
                    text, request.language, voice, request.params, request.output
                )
        except WorkerError as exc:
            raise JobFailed(exc.code.value, exc.message, field=exc.field,
                            version=version_record(), request_id=request_id) from exc
        except (RuntimeError, ValueError, OSError) as exc:
            raise JobFailed("synthesis_failed", f"{type(exc).__name__}: {exc}",
                            version=version_record(), request_id=request_id) from exc
        total_ms = (time.perf_counter() - started) * 1000
        stages = rendered.timings.model_copy(update={"total_ms": round(total_ms, 2)})
        return SynthesisResult(
            audio=rendered.data, format=rendered.format, sample_rate=rendered.sample_rate,
            duration_s=round(rendered.duration_s, 4),
            request_id=request_id, job_id=None, worker_id="local", version=version_record(),
            timings=Timings(client_ms=total_ms, stages=stages), cache=rendered.cache,
            audio_sha256=hashlib.sha256(rendered.data).hexdigest(), language=request.language,
            text_chars=len(text), pieces=rendered.pieces,
        )

    def health_check(self) -> dict[str, Any]:
        """Loads the model if needed; ``healthy`` when it is loaded."""
        from honora_tts.version import version_record

        try:
            model = self.model
        except (WorkerError, RuntimeError, OSError, ValueError, ImportError) as exc:
            log.error("%s: model failed to load: %s: %s", self.name, type(exc).__name__, exc)
            return {
                "status": "unhealthy", "error": f"{type(exc).__name__}: {exc}",
                "error_type": type(exc).__name__,
                "version": version_record().model_dump(mode="json"),
            }
        stats = model.stats() if hasattr(model, "stats") else {}
        return {
            "status": "healthy",
            "version": version_record().model_dump(mode="json"),
            "worker_id": "local",
            "health": {"model_loaded": True, "latent_cache": stats},
        }

    def _validated(
        self,
        text: str,
        language: str,
        fmt: str,
        sample_rate: int | None,
        params: SynthesisParams | Mapping[str, Any] | None,
        request_id: str,
    ) -> SynthesizeRequest:
        output: dict[str, Any] = {"format": fmt}
        if sample_rate is not None:
            output["sample_rate"] = sample_rate
        raw = {
            "request_id": request_id, "text": text, "language": language, "output": output,
            "params": self.merged_params(params),
        }
        parsed = parse_request(raw)
        if isinstance(parsed, ErrorInfo):
            raise InvalidRequest(f"{parsed.code.value}: {parsed.message}",
                                 code=parsed.code.value, request_id=request_id)
        return parsed.request

    @staticmethod
    def _voice(voice: Any, service: SynthesisService) -> VoiceSample:
        if voice is None or str(voice) == "":
            return service.voice(None)
        if isinstance(voice, (bytes, bytearray, memoryview)):
            raise InvalidRequest("pass the voice as a file path, not as audio bytes")
        path = Path(os.fspath(voice)).expanduser()
        if not path.is_file():
            raise InvalidRequest(f"voice file {path} does not exist")
        return VoiceSample(path=path, sha256=file_sha256(path), cache="hit")
