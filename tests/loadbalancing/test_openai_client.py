"""The official ``openai`` package against localpod in load-balancing mode: audio in every
format, whole and streamed (raw and server-sent events), OpenAI-shaped errors with honora's
codes, and the voice library through ``audio.voices``."""

from __future__ import annotations

import base64
import json
import time

import openai
import pytest
from lb_testing import TINY, decoded_seconds, voice_wav

FORMATS = ["mp3", "opus", "aac", "flac", "wav", "pcm"]


@pytest.fixture(scope="module")
def oai(lb) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{lb.base_url}/v1", api_key=lb.api_key, max_retries=0)


@pytest.mark.parametrize("fmt", FORMATS)
def test_speech_create_returns_the_whole_audio_in_every_format(oai, fmt):
    answer = oai.audio.speech.with_raw_response.create(
        model="tts-1", input="Hello from the load balancer.", voice="alloy",
        response_format=fmt, extra_body={"params": TINY})
    data = answer.content
    assert decoded_seconds(fmt, data) > 0.2
    assert answer.headers["X-Runpod-Worker-Id"].startswith("worker-")
    assert answer.headers["X-Honora-Handler-Version"] == "2"
    assert len(answer.headers["X-Honora-Model-Sha256"]) == 64


@pytest.mark.parametrize("fmt", FORMATS)
def test_streamed_speech_arrives_in_pieces_and_decodes_in_every_format(oai, fmt):
    arrivals = []
    with oai.audio.speech.with_streaming_response.create(
        model="tts-1", input="Hello, streamed.", voice="alloy", response_format=fmt,
        extra_body={"params": {"max_new_tokens": 24, "stream_chunk_size": 6}},
    ) as answer:
        started = time.perf_counter()
        for piece in answer.iter_bytes():
            arrivals.append((time.perf_counter() - started, piece))
    data = b"".join(piece for _, piece in arrivals)
    assert decoded_seconds(fmt, data) > 0.8
    # Several pieces, the first well before the last: the audio came as it was made.
    assert len(arrivals) >= 2 and arrivals[0][0] < arrivals[-1][0]


@pytest.mark.parametrize("fmt", ["pcm", "mp3"])
def test_server_sent_events_carry_the_audio_and_end_with_done(oai, fmt):
    with oai.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", input="Events.", voice="alloy", response_format=fmt,
        stream_format="sse", extra_body={"params": TINY},
    ) as answer:
        text = answer.read().decode()
    events = [json.loads(block[6:]) for block in text.split("\n\n") if block.startswith("data: ")]
    assert events[-1]["type"] == "speech.audio.done" and "usage" in events[-1]
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert {e["type"] for e in events[:-1]} == {"speech.audio.delta"}
    assert decoded_seconds(fmt, audio) > 0.2


def test_bad_and_stale_requests_raise_openais_errors_with_honoras_codes(oai):
    cases = [
        (openai.BadRequestError, "text_empty", "input", {"input": ""}),
        (openai.BadRequestError, "invalid_input", "model", {"model": "whisper-1"}),
        (openai.NotFoundError, "voice_not_found", "voice", {"voice": "nobody"}),
        (openai.BadRequestError, "voice_embedded", "speaker_wav",
         {"extra_body": {"speaker_wav": "UklGRiQAAABXQVZF"}}),
        (openai.BadRequestError, "unsupported_language", "language",
         {"extra_body": {"language": "tlh"}}),
        (openai.BadRequestError, "voice_url_forbidden", "voice_url",
         {"extra_body": {"voice_url": "file:///etc/passwd"}}),
    ]
    for error, code, param, change in cases:
        request = {"model": "tts-1", "input": "Hello.", "voice": "alloy", **change}
        with pytest.raises(error) as caught:
            oai.audio.speech.create(**request)
        assert caught.value.code == code and caught.value.body["param"] == param
        assert caught.value.body["message"]
    # and the endpoint serves the next request
    assert oai.audio.speech.create(model="tts-1", input="Still here.", voice="alloy",
                                   extra_body={"params": TINY}).content


def test_a_voice_uploaded_through_openais_client_is_named_and_speaks(oai, tmp_path):
    sample = voice_wav(tmp_path / "anna.wav")
    voice = oai.audio.voices.create(audio_sample=sample.open("rb"), consent="cons_local",
                                    name="anna")
    assert voice.id == voice.name == "anna" and voice.object == "audio.voice"
    listed = oai.get("/audio/voices", cast_to=object)
    assert "anna" in [v["id"] for v in listed["data"]]  # type: ignore[index]
    # Any worker finds it: the library is shared (a network volume on RunPod).
    workers = set()
    for _ in range(3):
        answer = oai.audio.speech.with_raw_response.create(
            model="tts-1", input="I am Anna.", voice={"id": "anna"}, response_format="wav",
            extra_body={"params": TINY})
        workers.add(answer.headers["X-Runpod-Worker-Id"])
        assert decoded_seconds("wav", answer.content) > 0.2
    assert len(workers) >= 2, "unpinned requests spread over the workers"
