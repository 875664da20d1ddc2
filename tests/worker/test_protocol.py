"""The request contract: every shape answers with a request or a structured error, never raises."""

import pytest

from honora_tts.protocol import (
    HANDLER_VERSION,
    MAX_SECTIONS,
    MAX_TEXT_CHARS,
    ErrorCode,
    ErrorInfo,
    ParsedRequest,
    SynthesizeRequest,
    parse_request,
)


def _error(raw) -> ErrorInfo:
    parsed = parse_request(raw)
    assert isinstance(parsed, ErrorInfo), parsed
    return parsed


def _ok(raw) -> ParsedRequest:
    parsed = parse_request(raw)
    assert isinstance(parsed, ParsedRequest), parsed
    return parsed


def test_simple_request_gets_defaults():
    request = _ok({"text": "Hello world."}).request
    assert request.action == "synthesize"
    assert request.language == "en"
    assert request.output.format == "wav" and request.output.sample_rate == 24_000
    assert request.params.overrides() == {}
    assert not request.is_batch


@pytest.mark.parametrize(
    ("raw", "code", "field"),
    [
        ({}, ErrorCode.INVALID_INPUT, "text"),
        (None, ErrorCode.INVALID_INPUT, "input"),
        ([], ErrorCode.INVALID_INPUT, "input"),
        ("text", ErrorCode.INVALID_INPUT, "input"),
        ({"text": ""}, ErrorCode.TEXT_EMPTY, "text"),
        ({"text": " \n\t "}, ErrorCode.TEXT_EMPTY, "text"),
        ({"text": "x" * (MAX_TEXT_CHARS + 1)}, ErrorCode.TEXT_TOO_LONG, "text"),
        ({"text": 5}, ErrorCode.INVALID_INPUT, "text"),
        ({"text": "hi", "language": "xx"}, ErrorCode.UNSUPPORTED_LANGUAGE, "language"),
        ({"text": "hi", "colour": "red"}, ErrorCode.INVALID_INPUT, "colour"),
        ({"text": "hi", "params": {"temperature": 9}}, ErrorCode.INVALID_INPUT,
         "params.temperature"),
        ({"text": "hi", "params": {"speed": 0}}, ErrorCode.INVALID_INPUT, "params.speed"),
        ({"text": "hi", "output": {"format": "aiff"}}, ErrorCode.INVALID_INPUT, "output.format"),
        ({"text": "hi", "output": {"sample_rate": 1}}, ErrorCode.INVALID_INPUT,
         "output.sample_rate"),
        ({"text": "hi", "voice_sha256": "abc"}, ErrorCode.INVALID_INPUT, "voice_sha256"),
        ({"text": "hi", "speaker_wav": "UklGRg=="}, ErrorCode.VOICE_EMBEDDED, "speaker_wav"),
        ({"text": "hi", "sections": [{"id": "a", "text": "b"}]}, ErrorCode.INVALID_INPUT,
         "text"),
        ({"sections": []}, ErrorCode.INVALID_INPUT, "sections"),
        ({"sections": "abc"}, ErrorCode.INVALID_INPUT, "sections"),
        ({"sections": [{"id": str(i), "text": "a"} for i in range(MAX_SECTIONS + 1)]},
         ErrorCode.TEXT_TOO_LONG, "sections"),
        ({"text": "\ud800 broken"}, ErrorCode.INVALID_INPUT, "text"),
        ({"action": "dance"}, ErrorCode.INVALID_INPUT, "action"),
        ({"text": "hi", "output": {"format": "mp3", "sample_rate": 44_000}},
         ErrorCode.INVALID_INPUT, "output.sample_rate"),
        ({"text": "hi", "request_id": ""}, ErrorCode.INVALID_INPUT, "request_id"),
    ],
)
def test_bad_shapes_get_structured_errors(raw, code, field):
    error = _error(raw)
    assert error.code == code
    assert error.field == field
    assert error.message


def test_batch_fails_only_bad_sections():
    parsed = _ok({
        "voice_url": "https://voices.example/a.wav",
        "sections": [
            {"id": "intro", "text": "Welcome."},
            {"id": "empty", "text": ""},
            {"id": "klingon", "text": "Qapla'", "language": "tlh"},
            42,
            {"id": "intro", "text": "A duplicate id."},
            {"id": 7, "text": "Numbers are ids too.", "language": "fr"},
        ],
    })
    assert [s.id for s in parsed.request.sections] == ["intro", "7"]
    bad = {s.index: s.error.code for s in parsed.invalid_sections}
    assert bad == {
        1: ErrorCode.TEXT_EMPTY,
        2: ErrorCode.UNSUPPORTED_LANGUAGE,
        3: ErrorCode.INVALID_INPUT,
        4: ErrorCode.INVALID_INPUT,
    }
    assert parsed.invalid_sections[2].id == "#3"


def test_batch_only_worker_shapes_still_parse():
    """The request shape the old batch-only worker took keeps working."""
    parsed = _ok({
        "lang": "de",
        "voice": "https://voices.example/v.wav",
        "sections": [{"section_id": "s1", "content": "Guten Tag.", "voice": None}],
    })
    request = parsed.request
    assert request.language == "de"
    assert request.voice_url == "https://voices.example/v.wav"
    assert request.sections[0].id == "s1" and request.sections[0].text == "Guten Tag."


def test_batch_only_worker_loose_sections_still_parse():
    """The old worker read a bare string as a section's text and numbered sections without
    an id by position (tests/fixtures/stale_handler.py); both keep working."""
    parsed = _ok({"sections": ["First.", {"text": "Second."}, {"id": "1", "text": "Clash."},
                               None]})
    assert [(s.id, s.text) for s in parsed.request.sections] == [("0", "First."),
                                                                  ("1", "Second.")]
    bad = {s.index: (s.error.code, s.error.field) for s in parsed.invalid_sections}
    assert bad == {2: (ErrorCode.INVALID_INPUT, "sections.2.id"),
                   3: (ErrorCode.INVALID_INPUT, "sections.3")}
    too_long = _error({"sections": ["x" * 4_000] * 30})
    assert too_long.code == ErrorCode.TEXT_TOO_LONG and too_long.field == "sections"


def test_language_aliases_normalise():
    assert _ok({"text": "你好", "language": "zh"}).request.language == "zh-cn"
    assert _ok({"text": "Hi", "language": " EN "}).request.language == "en"


def test_health_needs_no_text():
    assert _ok({"action": "health"}).request.action == "health"


def test_client_side_round_trip():
    sent = SynthesizeRequest(
        text="Hello.", request_id="r-1", params={"temperature": 0.5}, output={"format": "flac"}
    ).to_input()
    back = _ok(sent).request
    assert back.request_id == "r-1"
    assert back.params.temperature == 0.5 and back.output.format == "flac"


def test_handler_version_is_past_the_batch_only_worker():
    assert HANDLER_VERSION >= 2


def test_synthesis_defaults_are_one_valid_parameter_set():
    from honora_tts.protocol import LATENT_PARAMS, SYNTHESIS_DEFAULTS, SynthesisParams

    params = SynthesisParams(**SYNTHESIS_DEFAULTS)  # every default within its field's bounds
    assert set(SYNTHESIS_DEFAULTS) | {"max_new_tokens", "seed"} == set(SynthesisParams.model_fields)
    assert set(LATENT_PARAMS) <= set(SYNTHESIS_DEFAULTS)
    assert SynthesisParams().overrides() == {}  # requests still carry only what was given
    assert params.to_sampling_params() == SynthesisParams().to_sampling_params()


def test_the_wire_becomes_the_decoders_sampling_in_one_step():
    """One precedence rule: a given value wins over the default, field by field; every wire
    parameter has its place in the sampling the decoder reads (and nothing else)."""
    import dataclasses

    from honora_tts.protocol import SamplingParams, SynthesisParams

    wire = set(SynthesisParams.model_fields)
    assert wire == {f.name for f in dataclasses.fields(SamplingParams)} - {"do_sample"}
    sampling = SynthesisParams(temperature=0.5, seed=7, gpt_cond_len=3).to_sampling_params()
    assert sampling == dataclasses.replace(SamplingParams(), temperature=0.5, seed=7,
                                           gpt_cond_len=3)
    assert sampling.max_new_tokens is None  # the checkpoint's own bound, resolved by the model
    assert sampling.latent_args() == {"gpt_cond_len": 3, "max_ref_length": 30}
    assert SamplingParams().do_sample is True
    with pytest.raises(ValueError, match="top_p must lie"):
        SamplingParams(top_p=1.5).check()


def test_unknown_or_out_of_range_params_are_refused_naming_the_field():
    bad = parse_request({"text": "hi", "params": {"sharpness": 2}})
    assert isinstance(bad, ErrorInfo) and bad.field == "params.sharpness"
    assert bad.code == ErrorCode.INVALID_INPUT
    high = parse_request({"text": "hi", "params": {"temperature": 9}})
    assert isinstance(high, ErrorInfo) and high.field == "params.temperature"
