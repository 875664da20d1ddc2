"""Building worker requests from a caller's arguments, checked as the worker will check them
(so that a bad request costs no GPU job)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from honora_tts.client._exceptions import InvalidRequest
from honora_tts.protocol import (
    ErrorInfo,
    OutputSpec,
    SynthesisParams,
    SynthesizeRequest,
    parse_request,
)


def build_request(**fields: Any) -> SynthesizeRequest:
    """A :class:`SynthesizeRequest`; InvalidRequest when the fields do not make one."""
    try:
        return SynthesizeRequest(**fields)
    except ValueError as exc:
        raise InvalidRequest(
            f"invalid request: {exc}", request_id=fields.get("request_id")
        ) from exc


def output_spec(format: str, sample_rate: int | None, delivery: str) -> OutputSpec:
    """The output settings; InvalidRequest for a format, rate or delivery the worker refuses."""
    values: dict[str, Any] = {"format": format, "delivery": delivery}
    if sample_rate is not None:
        values["sample_rate"] = sample_rate
    try:
        return OutputSpec(**values)
    except ValueError as exc:
        raise InvalidRequest(f"invalid output settings: {exc}") from exc


def synthesis_params(params: SynthesisParams | Mapping[str, Any] | None) -> SynthesisParams:
    """``params`` as :class:`SynthesisParams` (None: the worker's defaults)."""
    if params is None:
        return SynthesisParams()
    if isinstance(params, SynthesisParams):
        return params
    try:
        return SynthesisParams(**params)
    except ValueError as exc:
        raise InvalidRequest(f"invalid synthesis params: {exc}") from exc


def validated(job_input: dict[str, Any], request_id: str) -> dict[str, Any]:
    """``job_input`` once the worker's own parser accepts it, else InvalidRequest."""
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
