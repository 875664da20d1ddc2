"""The worker's request and response: one definition, used by the worker to validate and by the
client to build requests and read answers.

A request is RunPod's ``input`` object. Two modes share it: simple (``text``) and batch
(``sections``). Validation never raises: :func:`parse_request` returns either a request or an
:class:`ErrorInfo` with a stable code, and a batch is validated section by section so that one
bad section fails only itself.

``HANDLER_VERSION`` is the contract's version. It increases whenever the request or response
shape changes; clients refuse workers below their minimum. Version 1 was the batch-only worker
that answered simple requests with "No sections provided".
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from honora_tts.audio import OUTPUT_FORMATS, AudioFormat
from honora_tts.untrusted_text import escape_controls

HANDLER_VERSION = 2

#: Languages XTTS-v2 speaks (coqui-tts ``XttsConfig.languages``).
LANGUAGES: tuple[str, ...] = (
    "en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl",
    "cs", "ar", "zh-cn", "hu", "ko", "ja", "hi",
)  # fmt: skip
LANGUAGE_ALIASES = {"zh": "zh-cn", "zh-CN": "zh-cn", "en-US": "en", "en-GB": "en"}

#: Hard caps. Longer text than a language's XTTS limit is split into sentences by the worker;
#: these bound the total work one request may ask for.
MAX_TEXT_CHARS = 5_000
MAX_SECTIONS = 500
MAX_BATCH_CHARS = 100_000
MAX_REQUEST_ID_CHARS = 128
MAX_URL_CHARS = 2_048
#: The most seconds of reference voice a request may ask the latents to use (``max_ref_length``).
MAX_REF_LENGTH_S = 60

#: Keys that earlier clients used to embed the reference voice as base64. Such requests are
#: what crashed the old workers; they are refused with ``voice_embedded``.
EMBEDDED_VOICE_KEYS = (
    "voice_base64", "voice_b64", "speaker_wav", "speaker_wav_base64", "reference_audio",
    "audio_base64", "voice_data",
)  # fmt: skip


class ErrorCode(StrEnum):
    INVALID_INPUT = "invalid_input"
    TEXT_EMPTY = "text_empty"
    TEXT_TOO_LONG = "text_too_long"
    UNSUPPORTED_LANGUAGE = "unsupported_language"
    VOICE_EMBEDDED = "voice_embedded"
    VOICE_URL_FORBIDDEN = "voice_url_forbidden"
    VOICE_FETCH_FAILED = "voice_fetch_failed"
    VOICE_TOO_LARGE = "voice_too_large"
    VOICE_NOT_AUDIO = "voice_not_audio"
    VOICE_CHECKSUM_MISMATCH = "voice_checksum_mismatch"
    STREAMING_UNAVAILABLE = "streaming_unavailable"
    SYNTHESIS_FAILED = "synthesis_failed"
    OUTPUT_UPLOAD_FAILED = "output_upload_failed"
    MODEL_NOT_READY = "model_not_ready"
    CANCELLED = "cancelled"
    INTERNAL_ERROR = "internal_error"
    #: The load-balancing mode's own (:mod:`honora_tts.worker.http_app`): a named voice the
    #: voice library does not hold, and a request body over the worker's limit.
    VOICE_NOT_FOUND = "voice_not_found"
    REQUEST_TOO_LARGE = "request_too_large"


class ErrorInfo(BaseModel):
    """A structured error: ``code`` is stable and machine-readable, ``message`` is for people.
    ``message`` and ``field`` often quote the request (an unknown field's name); their control
    characters are escaped, so an error can neither forge a log line nor drive a terminal."""

    model_config = ConfigDict(extra="forbid")

    code: ErrorCode
    message: str
    field: str | None = None

    @field_validator("message", "field")
    @classmethod
    def _escaped(cls, value: str | None) -> str | None:
        return None if value is None else escape_controls(value)


class WorkerError(Exception):
    """An expected failure with a stable code; the handler turns it into :class:`ErrorInfo`."""

    def __init__(self, code: ErrorCode, message: str, field: str | None = None):
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.field = field

    def to_info(self) -> ErrorInfo:
        return ErrorInfo(code=self.code, message=self.message, field=self.field)


class VersionRecord(BaseModel):
    """What a running build is. Every response carries one (see :mod:`honora_tts.version`)."""

    model_config = ConfigDict(extra="allow")

    handler_version: int
    package_version: str
    git_sha: str
    build_time: str
    python_version: str
    torch_version: str | None = None
    cuda_version: str | None = None
    gpu_name: str | None = None
    device: str | None = None
    model_name: str | None = None
    model_sha256: str | None = None
    worker_id: str | None = None
    streaming: bool = False


# ----------------------------------------------------------------------------- request


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, populate_by_name=True)


@dataclass(frozen=True)
class SamplingParams:
    """What a request's ``params`` resolve to, once (:meth:`SynthesisParams.to_sampling_params`):
    the GPT decoder's sampling, the vocoder's ``speed``, the stream's chunk, and the reference
    window of the speaker latents. The defaults are the synthesis defaults, one set for worker,
    local engine and model: the values of the ``config.json`` shipped with the XTTS-v2 release
    (temperature 0.75, repetition_penalty 5.0, top_k 50, top_p 0.85, length_penalty 1.0) with
    speed 1.0, latents from the first 6 s (``gpt_cond_len``) of at most 30 s of reference
    (``max_ref_length``), and 20 GPT tokens per streamed chunk after a first chunk of 16.
    coqui's class config
    (temperature 0.85, repetition_penalty 2.0) and its method defaults (repetition_penalty
    10.0) are not used.

    ``max_new_tokens`` None is the checkpoint's own bound, and a larger value is clamped to it
    (the model knows it: :class:`~honora_tts.model.XttsModel`); ``seed`` None draws a fresh
    seed. ``do_sample`` False decodes greedily (not on the wire: the tests' reference).
    ``length_penalty`` only scores beams; XTTS decodes one beam, where it has no effect (as in
    ``transformers``' ``generate``): it is accepted and validated, not used.
    """

    temperature: float = 0.75
    top_p: float = 0.85
    #: 0: off.
    top_k: int = 50
    repetition_penalty: float = 5.0
    length_penalty: float = 1.0
    do_sample: bool = True
    seed: int | None = None
    max_new_tokens: int | None = None
    speed: float = 1.0
    stream_chunk_size: int = 20
    #: GPT tokens of a sentence's first streamed chunk (then ``stream_chunk_size`` each). From
    #: P11 (``python -m benchmarks p11``): a first chunk of 16 codes plays 0.35 s and comes
    #: about 60 ms sooner than one of 20 with no more stalls; 12 codes come 200 ms sooner but
    #: play 0.17 s, and every stream then ran dry longer where generation is near real time.
    stream_first_chunk_size: int = 16
    gpt_cond_len: int = 6
    max_ref_length: int = 30

    def check(self) -> None:
        """Raise ValueError, naming the parameter, on a value the decoder cannot use (the wire's
        bounds, :class:`SynthesisParams`, are narrower)."""
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ValueError(f"temperature must be a positive number, got {self.temperature}")
        if not 0.0 <= self.top_p <= 1.0:
            raise ValueError(f"top_p must lie in [0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be 0 (off) or positive, got {self.top_k}")
        if not (self.repetition_penalty > 0 and math.isfinite(self.repetition_penalty)):
            raise ValueError(f"repetition_penalty must be a positive number, got "
                             f"{self.repetition_penalty}")
        if not math.isfinite(self.length_penalty):
            raise ValueError(f"length_penalty must be finite, got {self.length_penalty}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be positive, got {self.max_new_tokens}")
        if not (self.speed > 0 and math.isfinite(self.speed)):
            raise ValueError(f"speed must be a positive number, got {self.speed}")
        if self.stream_chunk_size < 1 or self.stream_first_chunk_size < 1:
            raise ValueError(f"stream_chunk_size and stream_first_chunk_size must be positive, "
                             f"got {self.stream_chunk_size} and {self.stream_first_chunk_size}")
        if self.gpt_cond_len < 1 or self.max_ref_length < 1:
            raise ValueError(f"gpt_cond_len and max_ref_length must be positive, got "
                             f"{self.gpt_cond_len} and {self.max_ref_length}")

    def latent_args(self) -> dict[str, int]:
        """The arguments of the speaker latents (``XttsModel.latents``)."""
        return {"gpt_cond_len": self.gpt_cond_len, "max_ref_length": self.max_ref_length}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The synthesis defaults as a mapping (:class:`SamplingParams`' fields that have a value;
#: ``max_new_tokens`` and ``seed`` default to the checkpoint's bound and none).
SYNTHESIS_DEFAULTS: dict[str, float | int] = {
    name: value for name, value in asdict(SamplingParams()).items()
    if value is not None and name != "do_sample"
}
#: The parameters that shape the speaker latents rather than the generation.
LATENT_PARAMS = ("gpt_cond_len", "max_ref_length")


class SynthesisParams(_Strict):
    """A request's ``params``: overrides of the synthesis defaults (:class:`SamplingParams`),
    each bounded. A new parameter is a field here and one in :class:`SamplingParams`, used where
    it acts (the decoder, the vocoder or the latents)."""

    temperature: Annotated[float, Field(gt=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    top_k: Annotated[int, Field(ge=1, le=500)] | None = None
    repetition_penalty: Annotated[float, Field(ge=1.0, le=20.0)] | None = None
    length_penalty: Annotated[float, Field(ge=-10.0, le=10.0)] | None = None
    speed: Annotated[float, Field(ge=0.5, le=2.0)] | None = None
    #: Upper bound on generated GPT tokens (about 21.5 per second of audio).
    max_new_tokens: Annotated[int, Field(ge=1, le=4096)] | None = None
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    #: Latent extraction: seconds of reference used.
    gpt_cond_len: Annotated[int, Field(ge=1, le=30)] | None = None
    max_ref_length: Annotated[int, Field(ge=1, le=MAX_REF_LENGTH_S)] | None = None
    #: Streaming: GPT tokens per streamed chunk.
    stream_chunk_size: Annotated[int, Field(ge=4, le=200)] | None = None
    #: Streaming: GPT tokens in the first chunk of each sentence (a small one: early audio;
    #: at most ``stream_chunk_size``), then ``stream_chunk_size`` per chunk.
    stream_first_chunk_size: Annotated[int, Field(ge=2, le=200)] | None = None

    def overrides(self) -> dict[str, Any]:
        """The values given, nothing else."""
        return self.model_dump(exclude_none=True)

    def to_sampling_params(self) -> SamplingParams:
        """The one step from the wire to the decoder (vLLM's ``to_sampling_params``): the
        values given win over the synthesis defaults, field by field; nothing else merges
        defaults."""
        return SamplingParams(**self.overrides())


Delivery = Literal["base64", "url", "auto"]


class OutputSpec(_Strict):
    #: One of :data:`honora_tts.audio.OUTPUT_FORMATS`.
    format: AudioFormat = "wav"
    #: Output sample rate; XTTS generates at 24 kHz and other rates are resampled.
    sample_rate: Annotated[int, Field(ge=8_000, le=48_000)] = 24_000
    #: ``auto``: base64 unless the encoded audio exceeds ``HONORA_URL_DELIVERY_BYTES`` and an
    #: output bucket is configured, then a URL.
    delivery: Delivery = "auto"

    @field_validator("sample_rate")
    @classmethod
    def _format_rate(cls, value: int, info: ValidationInfo) -> int:
        row = OUTPUT_FORMATS.get(info.data.get("format", "wav"))
        problem = row.rate_problem(value) if row is not None else None
        if problem:
            raise ValueError(problem)
        return value


def normalise_language(value: Any) -> Any:
    """A language code as the worker knows it (``zh`` -> ``zh-cn``, ``EN`` -> ``en``); anything
    that is not a string is returned unchanged (validation reports it)."""
    if isinstance(value, str):
        value = value.strip()
        return LANGUAGE_ALIASES.get(value, value.lower() if value != "zh-cn" else value)
    return value


def _check_language(value: str) -> str:
    if value not in LANGUAGES:
        raise ValueError(f"unsupported language {value!r}; XTTS-v2 speaks {', '.join(LANGUAGES)}")
    return value


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _check_voice_url(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_URL_CHARS:
        raise ValueError(f"voice_url is longer than {MAX_URL_CHARS} characters")
    return value


#: The names a section's id goes by (the batch-only worker's among them).
SECTION_ID_KEYS = ("id", "section_id", "name")


class Section(_Strict):
    """One batch section. ``section_id``/``content``/``voice``/``lang`` are accepted for the
    batch-only worker's request shape."""

    id: str = Field(validation_alias=AliasChoices(*SECTION_ID_KEYS))
    text: str = Field(validation_alias=AliasChoices("text", "content"))
    voice_url: str | None = Field(
        default=None, validation_alias=AliasChoices("voice_url", "voice", "speaker_url")
    )
    voice_sha256: str | None = None
    language: str | None = Field(default=None, validation_alias=AliasChoices("language", "lang"))

    @field_validator("id", mode="before")
    @classmethod
    def _id_is_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> Any:
        return normalise_language(value)

    _voice_url = field_validator("voice_url")(lambda cls, v: _check_voice_url(v))


class SynthesizeRequest(_Strict):
    """A validated request. Exactly one of ``text`` and ``sections`` is set for synthesis."""

    action: Literal["synthesize", "health"] = "synthesize"
    request_id: Annotated[str, Field(min_length=1, max_length=MAX_REQUEST_ID_CHARS)] | None = None
    text: str | None = None
    voice_url: str | None = Field(
        default=None, validation_alias=AliasChoices("voice_url", "voice", "speaker_url")
    )
    voice_sha256: str | None = None
    language: str = Field(default="en", validation_alias=AliasChoices("language", "lang"))
    sections: list[Section] | None = None
    output: OutputSpec = Field(default_factory=OutputSpec)
    params: SynthesisParams = Field(default_factory=SynthesisParams)
    stream: bool = False

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> Any:
        return normalise_language(value)

    @field_validator("request_id")
    @classmethod
    def _printable_request_id(cls, value: str | None) -> str | None:
        # It is echoed in every log line: a line break in it would forge log lines.
        if value is not None and not value.isprintable():
            raise ValueError("request_id must be printable (no control characters or breaks)")
        return value

    _voice_url = field_validator("voice_url")(lambda cls, v: _check_voice_url(v))

    def to_input(self) -> dict[str, Any]:
        """The RunPod ``input`` object for this request (what the client sends)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=False)

    @property
    def is_batch(self) -> bool:
        return self.sections is not None


# A section that failed validation keeps its place in the batch and answers with its error.
class InvalidSection(BaseModel):
    index: int
    id: str
    error: ErrorInfo


class ParsedRequest(BaseModel):
    """What the worker acts on: the request plus the batch sections that failed validation."""

    request: SynthesizeRequest
    invalid_sections: list[InvalidSection] = Field(default_factory=list)


_FIELD_CODES = {"language": ErrorCode.UNSUPPORTED_LANGUAGE}


def _first_error(exc: ValidationError, prefix: str = "") -> ErrorInfo:
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"])
    field = f"{prefix}{loc}" if loc else (prefix.rstrip(".") or None)
    last = str(err["loc"][-1]) if err["loc"] else ""
    code = _FIELD_CODES.get(last, ErrorCode.INVALID_INPUT)
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = f"unknown field {last!r}"
    elif err["type"] == "missing":
        message = f"field {last!r} is required"
    return ErrorInfo(code=code, message=f"{field}: {message}" if field else message, field=field)


def validation_error(exc: ValidationError, prefix: str = "") -> ErrorInfo:
    """The first problem of a pydantic validation of a request model as the structured error
    the worker answers with (unknown and missing fields named; a language: its own code)."""
    return _first_error(exc, prefix)


def _text_error(text: str, field: str, limit: int = MAX_TEXT_CHARS) -> ErrorInfo | None:
    if not text.strip():
        return ErrorInfo(code=ErrorCode.TEXT_EMPTY, message=f"{field} is empty", field=field)
    if len(text) > limit:
        return ErrorInfo(
            code=ErrorCode.TEXT_TOO_LONG,
            message=f"{field} has {len(text)} characters; the limit is {limit}. "
            "Split it into sections.",
            field=field,
        )
    if _has_surrogate(text):
        return ErrorInfo(
            code=ErrorCode.INVALID_INPUT, message=f"{field} holds invalid Unicode", field=field
        )
    control = next(
        (ch for ch in text if unicodedata.category(ch) == "Cc" and not ch.isspace()), None
    )
    if control is not None:
        return ErrorInfo(
            code=ErrorCode.INVALID_INPUT,
            message=f"{field} holds the control character U+{ord(control):04X}; send plain text",
            field=field,
        )
    if not any(unicodedata.category(ch)[0] in "LN" for ch in text):
        # Only punctuation, symbols or invisible characters: the model would speak noise.
        return ErrorInfo(
            code=ErrorCode.TEXT_EMPTY,
            message=f"{field} has nothing to speak (no letters or digits)",
            field=field,
        )
    return None


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def _invalid_unicode_field(value: Any, path: str) -> str | None:
    """The first place in a JSON value (keys included) holding a lone surrogate: such strings
    cannot be encoded as UTF-8 and break URLs, logs and answers downstream. Iterative, so that
    deeply nested input cannot exhaust the stack."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str) and _has_surrogate(item):
            return where or "input"
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and _has_surrogate(key):
                    return where or "input"
                stack.append((child, f"{where}.{key}" if where else str(key)))
        elif isinstance(item, list):
            stack.extend(
                (child, f"{where}.{i}" if where else str(i)) for i, child in enumerate(item)
            )
    return None


def _unicode_error(value: Any, path: str = "") -> ErrorInfo | None:
    where = _invalid_unicode_field(value, path)
    if where is None:
        return None
    return ErrorInfo(
        code=ErrorCode.INVALID_INPUT, message=f"{where} holds invalid Unicode", field=where
    )


def _sha_error(value: str | None, field: str) -> ErrorInfo | None:
    if value is not None and not _SHA256.match(value):
        return ErrorInfo(
            code=ErrorCode.INVALID_INPUT,
            message=f"{field} must be 64 lowercase hex characters (a SHA-256)",
            field=field,
        )
    return None


def _section_id(raw: Any, index: int) -> str:
    if isinstance(raw, dict):
        for key in SECTION_ID_KEYS:
            value = raw.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                text = str(value)[:MAX_REQUEST_ID_CHARS]
                return text if not _has_surrogate(text) else f"#{index}"
    return f"#{index}"


def _legacy_section(raw: Any, index: int) -> Any:
    """The batch-only worker's looser sections, as it read them: a bare string is the text, and
    a section without an id is known by its position."""
    if isinstance(raw, str):
        return {"id": str(index), "text": raw}
    if isinstance(raw, dict) and not any(key in raw for key in SECTION_ID_KEYS):
        return {"id": str(index), **raw}
    return raw


def _section_chars(raw: Any) -> int:
    if isinstance(raw, dict):
        raw = raw.get("text") or raw.get("content") or ""
    return len(raw) if isinstance(raw, str) else 0


def _parse_section(raw: Any, index: int) -> Section | ErrorInfo:
    prefix = f"sections.{index}."
    raw = _legacy_section(raw, index)
    if not isinstance(raw, dict):
        return ErrorInfo(
            code=ErrorCode.INVALID_INPUT,
            message=f"sections.{index} must be an object with id and text (or a string)",
            field=f"sections.{index}",
        )
    embedded = _embedded_voice_error(raw, prefix) or _unicode_error(raw, prefix.rstrip("."))
    if embedded:
        return embedded
    try:
        section = Section.model_validate(raw)
    except ValidationError as exc:
        return _first_error(exc, prefix)
    if section.language is not None:
        try:
            _check_language(section.language)
        except ValueError as exc:
            return ErrorInfo(
                code=ErrorCode.UNSUPPORTED_LANGUAGE, message=str(exc), field=prefix + "language"
            )
    return (
        _text_error(section.text, prefix + "text")
        or _sha_error(section.voice_sha256, prefix + "voice_sha256")
        or section
    )


def _embedded_voice_error(raw: dict[str, Any], prefix: str = "") -> ErrorInfo | None:
    for key in EMBEDDED_VOICE_KEYS:
        if key in raw:
            return ErrorInfo(
                code=ErrorCode.VOICE_EMBEDDED,
                message=(
                    f"{prefix}{key}: reference audio embedded in the request is not accepted "
                    "(it is what crashed the old workers). Upload the voice to a voice store and "
                    "send its voice_url; honora_tts.client does this for you."
                ),
                field=f"{prefix}{key}",
            )
    return None


def parse_request(raw: Any) -> ParsedRequest | ErrorInfo:
    """Validate a RunPod ``input``; never raises."""
    if not isinstance(raw, dict):
        kind = type(raw).__name__ if raw is not None else "nothing"
        return ErrorInfo(
            code=ErrorCode.INVALID_INPUT,
            message=f"input must be a JSON object, got {kind}",
            field="input",
        )
    embedded = _embedded_voice_error(raw)
    if embedded:
        return embedded

    top = dict(raw)
    raw_sections = top.pop("sections", None)
    broken = _unicode_error(top)
    if broken:
        return broken
    if raw_sections is not None and not isinstance(raw_sections, list):
        return ErrorInfo(
            code=ErrorCode.INVALID_INPUT,
            message="sections must be a list of {id, text} objects",
            field="sections",
        )
    try:
        request = SynthesizeRequest.model_validate(top)
    except ValidationError as exc:
        return _first_error(exc)

    if request.action == "health":
        return ParsedRequest(request=request)
    try:
        _check_language(request.language)
    except ValueError as exc:
        return ErrorInfo(code=ErrorCode.UNSUPPORTED_LANGUAGE, message=str(exc), field="language")
    sha = _sha_error(request.voice_sha256, "voice_sha256")
    if sha:
        return sha

    if raw_sections is None:
        if request.text is None:
            return ErrorInfo(
                code=ErrorCode.INVALID_INPUT,
                message="nothing to synthesize: send text (simple mode) or sections (batch mode)",
                field="text",
            )
        return _text_error(request.text, "text") or ParsedRequest(request=request)

    if request.text is not None:
        return ErrorInfo(
            code=ErrorCode.INVALID_INPUT,
            message="send either text or sections, not both",
            field="text",
        )
    if not raw_sections:
        return ErrorInfo(
            code=ErrorCode.INVALID_INPUT, message="sections is empty", field="sections"
        )
    if len(raw_sections) > MAX_SECTIONS:
        return ErrorInfo(
            code=ErrorCode.TEXT_TOO_LONG,
            message=f"{len(raw_sections)} sections; the limit is {MAX_SECTIONS} per request. "
            "Send several requests.",
            field="sections",
        )
    total = sum(_section_chars(s) for s in raw_sections)
    if total > MAX_BATCH_CHARS:
        return ErrorInfo(
            code=ErrorCode.TEXT_TOO_LONG,
            message=f"sections hold {total} characters; the limit is {MAX_BATCH_CHARS} per request",
            field="sections",
        )

    good: list[Section] = []
    invalid: list[InvalidSection] = []
    seen: set[str] = set()
    for index, raw_section in enumerate(raw_sections):
        parsed = _parse_section(raw_section, index)
        if isinstance(parsed, Section) and parsed.id in seen:
            parsed = ErrorInfo(
                code=ErrorCode.INVALID_INPUT,
                message=f"duplicate section id {parsed.id!r}",
                field=f"sections.{index}.id",
            )
        if isinstance(parsed, ErrorInfo):
            invalid.append(
                InvalidSection(index=index, id=_section_id(raw_section, index), error=parsed)
            )
        else:
            seen.add(parsed.id)
            good.append(parsed)
    request.sections = good
    return ParsedRequest(request=request, invalid_sections=invalid)


# ---------------------------------------------------------------------------- response
# Response models refuse fields they do not declare: what a worker sends is written down here.
# The version record alone allows more: it is read from builds older and newer than this one.


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AudioPayload(_Response):
    """Encoded audio: inline (``base64``) or uploaded (``url``)."""

    format: AudioFormat
    sample_rate: int
    channels: int = 1
    duration_s: float
    bytes: int
    sha256: str
    delivery: Literal["base64", "url"]
    base64: str | None = None
    url: str | None = None


class StageTimings(_Response):
    """Milliseconds spent in each stage of one synthesis (summed over a batch)."""

    voice_fetch_ms: float = 0.0
    latents_ms: float = 0.0
    generation_ms: float = 0.0
    encode_ms: float = 0.0
    total_ms: float = 0.0
    #: Streams only: from the request's start to its first chunk, and how many chunks.
    first_chunk_ms: float | None = None
    chunks: int | None = None


class CacheFacts(_Response):
    """Where the voice file and its speaker latents came from."""

    voice: Literal["hit", "miss", "default"] = "default"
    latents: Literal["hit", "miss"] = "miss"


class SectionResult(_Response):
    """One batch section's outcome."""

    id: str
    index: int
    status: Literal["ok", "error"]
    audio: AudioPayload | None = None
    error: ErrorInfo | None = None
    text_chars: int = 0
    pieces: int = 0
    timings: StageTimings | None = None
    cache: CacheFacts | None = None


class SynthesisResponse(_Response):
    """A whole response. ``error`` is set only when the request as a whole failed; RunPod then
    marks the job FAILED. A batch in which some sections failed is ``partial``, not an error."""

    request_id: str | None = None
    job_id: str | None = None
    status: Literal["ok", "partial", "error", "healthy"]
    version: VersionRecord
    audio: AudioPayload | None = None
    sections: list[SectionResult] | None = None
    timings: StageTimings | None = None
    cache: CacheFacts | None = None
    language: str | None = None
    text_chars: int | None = None
    pieces: int | None = None
    health: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    #: Streams only: seconds of audio sent in ``chunk`` items (the response has no ``audio``).
    streamed_duration_s: float | None = None


class StreamChunk(_Response):
    """One item a streaming worker yields. ``type`` tells chunks from the closing summary."""

    type: Literal["chunk", "final"]
    request_id: str | None = None
    seq: int = 0
    sample_rate: int = 24_000
    #: Chunks carry PCM 16-bit little-endian mono, base64-encoded.
    pcm16_base64: str | None = None
    duration_s: float = 0.0
    elapsed_ms: float = 0.0
    response: SynthesisResponse | None = None
