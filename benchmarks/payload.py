"""P5 payload: bytes of a synthesis request carrying a voice, as honora's client sends it (a
voice URL) vs the old request with the voice embedded as base64.

The honora request is captured from :class:`~honora_tts.client.EndpointClient` itself (an
httpx transport records what it would put on the wire, then refuses the job); the voice goes
through a real :class:`~honora_tts.voices.LocalVoiceStore`. The old request is the shape earlier
clients sent (``{"input": {"text", "language", "speaker_wav": <base64 WAV>}}``), serialized as
the runpod SDK does (``requests``' ``json=``).
"""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path

import httpx

from benchmarks.options import BenchOptions
from benchmarks.report import BenchResult
from benchmarks.voice_files import write_voice

TEXT = "Welcome to Honora. This sentence is spoken in the cloned voice."
#: Voice lengths measured; the 30 s one carries the targets.
VOICE_SECONDS = (3.0, 30.0, 300.0)
TARGET_RATIO = 500.0
TARGET_MAX_BYTES = 4096
RUN_LIMIT_BYTES = 10_000_000


def _captured_request(voice: Path, store_dir: Path) -> httpx.Request:
    from honora_tts.client import APIError, EndpointClient
    from honora_tts.voices import LocalVoiceStore

    sent: list[httpx.Request] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(400, json={"error": "payload benchmark: not run"})

    with LocalVoiceStore(store_dir) as store, EndpointClient(
        "bench", "bench-key", "http://127.0.0.1:9/v2", voice_store=store,
        transport=httpx.MockTransport(endpoint),
    ) as client:
        try:
            client.synthesize(TEXT, voice=voice, language="en")
        except APIError:
            pass
    runs = [r for r in sent if r.url.path.endswith("/run")]
    if len(runs) != 1:
        raise RuntimeError(f"expected one POST /run, captured {[str(r.url) for r in sent]}")
    return runs[0]


def _wire_bytes(request: httpx.Request) -> int:
    """Request line + headers + body, as HTTP/1.1 sends them."""
    head = f"{request.method} {request.url.raw_path.decode()} HTTP/1.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in request.headers.items()) + "\r\n"
    return len(head.encode()) + len(request.content)


def _old_body(voice: Path) -> bytes:
    embedded = base64.b64encode(voice.read_bytes()).decode("ascii")
    body = {"input": {"text": TEXT, "language": "en", "speaker_wav": embedded}}
    return json.dumps(body).encode()


def run(options: BenchOptions, result: BenchResult) -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="honora-bench-payload-") as scratch:
        root = Path(scratch)
        for seconds in VOICE_SECONDS:
            voice = write_voice(root / f"voice-{seconds:g}s.wav", seconds, variant=int(seconds))
            request = _captured_request(voice, root / "store")
            body = json.loads(request.content)
            rows.append({
                "voice_s": seconds,
                "voice_file_bytes": voice.stat().st_size,
                "url_request_body_bytes": len(request.content),
                "url_request_wire_bytes": _wire_bytes(request),
                "base64_request_body_bytes": len(_old_body(voice)),
                "voice_url": body["input"].get("voice_url"),
            })
    result.data["voices"] = rows
    at_30 = next(r for r in rows if r["voice_s"] == 30.0)
    ratio = at_30["base64_request_body_bytes"] / at_30["url_request_body_bytes"]
    largest_url = max(r["url_request_body_bytes"] for r in rows)
    spread = (f"{min(r['url_request_body_bytes'] for r in rows)}..{largest_url} B over "
              f"{', '.join(f'{s:g}' for s in VOICE_SECONDS)} s voices")
    result.add("url_request_bytes_30s", "URL request body, 30 s voice",
               at_30["url_request_body_bytes"], "B", spread=spread,
               target=f"< {TARGET_MAX_BYTES} B", met=largest_url < TARGET_MAX_BYTES)
    result.add("url_request_wire_bytes_30s", "URL request on the wire (headers too), 30 s",
               at_30["url_request_wire_bytes"], "B")
    per_second = at_30["base64_request_body_bytes"] / 30.0
    result.add("base64_request_bytes_30s", "base64-embedded request body, 30 s voice",
               at_30["base64_request_body_bytes"], "B",
               note=f"over RunPod's 10 MB /run limit from {RUN_LIMIT_BYTES / per_second:.0f} s "
               "of 24 kHz 16-bit voice")
    result.add("size_ratio_30s", "base64 / URL request size, 30 s voice", ratio, "x",
               target=f">= {TARGET_RATIO:g}x", met=ratio >= TARGET_RATIO)
    largest = rows[-1]
    result.add("size_ratio_largest", f"base64 / URL request size, {largest['voice_s']:g} s voice",
               largest["base64_request_body_bytes"] / largest["url_request_body_bytes"], "x")
    result.notes.append("request sizes are exact byte counts: no repeats needed")
