"""Fuzzing the request validation (hypothesis): any JSON value, and near-valid requests built
from the protocol's own field names, gives either a valid request or a structured error, never
an exception; the worker's answer to it can always be sent back as UTF-8 JSON (what the runpod
SDK posts); a valid request survives its own round trip. Deterministic examples of each shape
live in tests/worker/test_protocol.py; this explores the space between them."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import record

from honora_tts.protocol import (
    LANGUAGE_ALIASES,
    LANGUAGES,
    ErrorCode,
    ErrorInfo,
    ParsedRequest,
    parse_request,
)
from honora_tts.synthesis import SynthesisService
from honora_tts.worker import RunPodAdapter

pytestmark = pytest.mark.reliability

EXAMPLES = 400
SEEN: Counter[str] = Counter()
#: Only invalid requests reach the worker here: they never need the model.
WORKER = RunPodAdapter(SynthesisService(None, model_error="validation only: no model"))

# Characters that broke things before or are easy to get wrong: lone surrogates, controls,
# invisible format characters, line separators.
_NASTY = ["\ud800", "\udfff", "\x00", "\x07", "\x1b", "\x7f", "\x85", "\u200b", "\ufeff",
          "\u2028", "\n", "\t", " ", "é", "字", "😀"]
_chars = st.one_of(st.characters(), st.sampled_from(_NASTY))
_text = st.text(_chars, max_size=40)
_numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
_scalars = st.one_of(st.none(), st.booleans(), _numbers, _text)
_json = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6), st.dictionaries(_text, children, max_size=6)
    ),
    max_leaves=30,
)

_PARAMS = ["temperature", "top_p", "top_k", "repetition_penalty", "length_penalty", "speed",
           "max_new_tokens", "seed", "gpt_cond_len", "max_ref_length", "stream_chunk_size"]
_plausible_text = st.one_of(_text, st.sampled_from(["Hello world.", "", "  ", "a" * 5001]))
_plausible_language = st.one_of(
    st.sampled_from([*LANGUAGES, *LANGUAGE_ALIASES, "xx", "", "EN"]), _text, _numbers,
)
_plausible_url = st.one_of(
    st.sampled_from(["https://voices.example/a.wav", "file:///etc/passwd", "http://127.0.0.1/",
                     "data:audio/wav;base64,AAAA", "", "x" * 2100]),
    _text.map(lambda t: f"https://voices.example/{t}"), _json,
)
_params = st.dictionaries(st.one_of(st.sampled_from(_PARAMS), _text),
                          st.one_of(_numbers, _json), max_size=4)
_output = st.dictionaries(
    st.sampled_from(["format", "sample_rate", "delivery", "bitrate"]),
    st.one_of(st.sampled_from(["wav", "flac", "ogg", "mp3", "url", "base64", "auto", "aac"]),
              _numbers, _json),
    max_size=3,
)
_section = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.one_of(_text, st.integers(), st.booleans(), st.sampled_from(["a", "b"])),
            "text": _plausible_text, "voice_url": _plausible_url, "language": _plausible_language,
            "voice_sha256": st.one_of(st.just("a" * 64), _text),
            "section_id": _text, "content": _plausible_text, "lang": _plausible_language,
            "voice_base64": _text, "extra": _json,
        },
    ),
    _json,
)
_FIELDS: dict[str, Any] = {
    "action": st.one_of(st.sampled_from(["synthesize", "health", "dance"]), _json),
    "request_id": st.one_of(_text, _json),
    "text": _plausible_text,
    "voice_url": _plausible_url,
    "voice": _plausible_url,
    "voice_sha256": st.one_of(st.just("0" * 64), st.just("A" * 64), _text),
    "language": _plausible_language,
    "sections": st.one_of(st.lists(_section, max_size=6), _json),
    "output": st.one_of(_output, _json),
    "params": st.one_of(_params, _json),
    "stream": st.one_of(st.booleans(), _json),
    "speaker_wav": _text,
    "unknown_field": _json,
}
_VALID_BASES = [
    {"text": "Hello world.", "params": {"max_new_tokens": 8}},
    {"text": "Bonjour.", "language": "fr", "voice_url": "https://voices.example/a.wav",
     "output": {"format": "flac", "sample_rate": 16000}, "request_id": "req-1"},
    {"sections": [{"id": "a", "text": "One."}, {"id": 2, "content": "Two.", "lang": "de"}]},
    {"action": "health"},
]


@st.composite
def _near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A valid request with up to three fields replaced, added or removed."""
    request = dict(draw(st.sampled_from(_VALID_BASES)))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        name = draw(st.sampled_from(sorted(_FIELDS)))
        if name in request and draw(st.booleans()):
            del request[name]
        else:
            request[name] = draw(_FIELDS[name])
    return request


_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _utf8_json(value: Any) -> bytes:
    """What the runpod SDK does with a handler's answer before posting it."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _check(raw: Any, kind: str) -> None:
    try:
        _check_one(raw, kind)
    except Exception:
        SEEN["exceptions"] += 1  # counted, then hypothesis shrinks and reports it
        raise


def _check_one(raw: Any, kind: str) -> None:
    parsed = parse_request(raw)
    assert isinstance(parsed, (ParsedRequest, ErrorInfo)), type(parsed)
    if isinstance(parsed, ErrorInfo):
        assert parsed.code in set(ErrorCode)
        assert isinstance(parsed.message, str) and parsed.message
        assert parsed.field is None or isinstance(parsed.field, str)
        _utf8_json(parsed.model_dump(mode="json"))
        answer = WORKER.handle({"id": "fuzz", "input": raw})
        assert json.loads(answer["error"])["code"] == parsed.code.value
        assert answer["status"] == "error" and answer["version"]["handler_version"] >= 2
        _utf8_json(answer)
        SEEN[f"{kind}:error:{parsed.code.value}"] += 1
        return
    request = parsed.request
    if not request.is_batch or request.sections:
        # What was accepted reads back the same (a batch keeps only its good sections).
        again = parse_request(request.to_input())
        assert isinstance(again, ParsedRequest), again
        assert again.request == request and not again.invalid_sections
    for bad in parsed.invalid_sections:
        assert bad.error.code in set(ErrorCode) and bad.error.message
        _utf8_json(bad.model_dump(mode="json"))
    _utf8_json(request.to_input())
    SEEN[f"{kind}:valid"] += 1


@_SETTINGS
@given(_json)
def test_any_json_is_a_request_or_a_structured_error(raw: Any) -> None:
    _check(raw, "any_json")


@_SETTINGS
@given(_near_valid())
def test_near_valid_requests_are_a_request_or_a_structured_error(raw: dict[str, Any]) -> None:
    _check(raw, "near_valid")


@_SETTINGS
@given(st.lists(_section, min_size=1, max_size=8), st.one_of(st.none(), _params))
def test_batches_fail_only_their_bad_sections(sections: list[Any], params: Any) -> None:
    raw: dict[str, Any] = {"sections": sections}
    if params is not None:
        raw["params"] = params
    parsed = parse_request(raw)
    if isinstance(parsed, ParsedRequest):
        good = parsed.request.sections or []
        assert len(good) + len(parsed.invalid_sections) == len(sections)
        assert len({s.id for s in good}) == len(good), "duplicate ids were let through"
        assert sorted(b.index for b in parsed.invalid_sections) == [
            b.index for b in parsed.invalid_sections
        ]
    _check(raw, "batch")


def test_fuzzing_figures() -> None:
    """Runs after the properties: records how many examples each produced, by outcome."""
    valid = sum(v for k, v in SEEN.items() if k.endswith(":valid"))
    errors = sum(v for k, v in SEEN.items() if ":error:" in k)
    codes: Counter[str] = Counter()
    for key, count in SEEN.items():
        if ":error:" in key:
            codes[key.rsplit(":", 1)[1]] += count
    record("fuzzing", properties=3, examples=valid + errors, valid_requests=valid,
           structured_errors=errors, error_codes=dict(codes), exceptions=SEEN["exceptions"])
    assert valid and errors and not SEEN["exceptions"]
