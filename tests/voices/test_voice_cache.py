"""VoiceCache against a real HTTP server on 127.0.0.1: hits and misses, single flight, limits,
validation, checksums, eviction, corruption and disk-full handling."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from voice_test_support import (
    RawServer,
    ScriptedServer,
    closed_port,
    flac_claiming_hours,
    flac_dense,
    flac_hiding_length,
    silent_wav,
    tls_contexts,
    voice_bytes,
)

from honora_tts.protocol import ErrorCode, WorkerError
from honora_tts.settings import WorkerSettings
from honora_tts.voices import cache as cache_module
from honora_tts.voices.audio_check import REFERENCE_MAX_S, REFERENCE_RATE
from honora_tts.voices.cache import UnsafeCacheRoot, VoiceCache

MakeCache = Callable[..., VoiceCache]


def _fails(cache: VoiceCache, url: str, code: ErrorCode, **kwargs: str) -> WorkerError:
    with pytest.raises(WorkerError) as caught:
        cache.fetch(url, **kwargs)
    assert caught.value.code == code, caught.value.message
    assert caught.value.field == "voice_url" or code == ErrorCode.INVALID_INPUT
    return caught.value


def _assert_reference_of(path: Path, data: bytes) -> None:
    """``path`` is the reference prepared from ``data``: its first 60 s, mono, at 22 050 Hz."""
    original, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    reference, reference_rate = sf.read(path, dtype="float32", always_2d=True)
    assert reference_rate == REFERENCE_RATE and reference.shape[1] == 1
    expected_s = min(len(original) / rate, REFERENCE_MAX_S)
    assert len(reference) / reference_rate == pytest.approx(expected_s, abs=0.01)
    peak = float(np.max(np.abs(original.mean(axis=1))))
    assert float(np.max(np.abs(reference))) == pytest.approx(peak, rel=0.05)


def _blob_files(cache: VoiceCache) -> list[Path]:
    return [p for p in (cache.root / "blobs").iterdir() if not p.name.startswith(".")]


def test_miss_then_hit_serves_the_same_checked_file(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    data = voice_bytes(2.0, 16_000)
    url = server.file("/voice.wav", data)
    cache = make_cache()

    first = cache.fetch(url)
    second = cache.fetch(url)

    assert first.cache == "miss" and second.cache == "hit"
    assert first.path == second.path
    _assert_reference_of(first.path, data)
    assert first.sha256 == hashlib.sha256(data).hexdigest() == second.sha256
    assert first.bytes == first.path.stat().st_size
    assert first.duration_s == pytest.approx(2.0, abs=0.01)
    assert first.sample_rate == 16_000
    assert first.path.suffix == ".wav"
    assert server.hits["/voice.wav"] == 1
    stats = cache.stats()
    assert stats["downloads"] == 1 and stats["hits"] == 1
    assert stats["entries"] == 1 and stats["total_bytes"] == first.bytes
    assert stats["bytes_downloaded"] == len(data)


def test_flac_voice_becomes_a_wav_reference(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    data = voice_bytes(fmt="FLAC")
    url = server.file("/voice", data, content_type="audio/flac")
    fetched = make_cache().fetch(url)
    assert fetched.path.suffix == ".wav"
    _assert_reference_of(fetched.path, data)


def test_eight_concurrent_fetches_make_one_download(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    data = voice_bytes()
    url = server.file("/slow.wav", data, delay_s=0.3)
    cache = make_cache()
    start = threading.Barrier(8)
    results: list[object] = []

    def fetch() -> None:
        start.wait()
        results.append(cache.fetch(url))

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert server.hits["/slow.wav"] == 1
    assert len(results) == 8
    assert {r.path for r in results} == {results[0].path}  # type: ignore[attr-defined]
    assert cache.stats()["downloads"] == 1


def test_concurrent_fetches_of_a_failing_url_share_one_attempt(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    def failing(handler: object) -> None:
        import time

        time.sleep(0.3)
        handler.send_response(500)  # type: ignore[attr-defined]
        handler.send_header("Content-Length", "0")  # type: ignore[attr-defined]
        handler.end_headers()  # type: ignore[attr-defined]

    server.routes["/broken.wav"] = failing
    cache = make_cache()
    start = threading.Barrier(8)
    codes: list[ErrorCode] = []

    def fetch() -> None:
        start.wait()
        try:
            cache.fetch(server.url("/broken.wav"))
        except WorkerError as exc:
            codes.append(exc.code)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert codes == [ErrorCode.VOICE_FETCH_FAILED] * 8
    assert server.hits["/broken.wav"] == 1


def test_declared_content_length_over_the_cap_is_refused_before_reading(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    url = server.declared_length("/huge.wav", 10 * 2**30)
    cache = make_cache(max_file_bytes=2**20)
    error = _fails(cache, url, ErrorCode.VOICE_TOO_LARGE)
    assert "10737418240" in error.message
    assert cache.stats()["bytes_downloaded"] == 0
    assert cache.stats()["entries"] == 0


def test_streamed_body_stops_at_the_cap(server: ScriptedServer, make_cache: MakeCache) -> None:
    cap = 2**20
    url = server.endless("/stream.wav")
    cache = make_cache(max_file_bytes=cap)
    _fails(cache, url, ErrorCode.VOICE_TOO_LARGE)
    received = cache.stats()["bytes_downloaded"]
    assert cap < received <= cap + 65_536
    assert _blob_files(cache) == []


def test_slow_drip_is_cut_off_by_the_total_timeout(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    url = server.drip("/drip.wav")
    cache = make_cache(total_timeout_s=1.0, read_timeout_s=5.0)
    error = _fails(cache, url, ErrorCode.VOICE_FETCH_FAILED)
    assert "longer than 1 s" in error.message
    assert f"127.0.0.1:{server.port}/drip.wav" in error.message


@pytest.mark.parametrize("phase", ["header_drip", "tls_drip"])
def test_a_drip_in_the_headers_or_the_tls_handshake_is_cut_off_by_the_total_deadline(
    phase: str, make_cache: MakeCache
) -> None:
    """Issue 11 #2: one deadline covers connect, TLS, headers and body. Before the fix each
    header (or handshake) read had its own timeout, so a server dripping a byte more often
    than that held the download until the server itself stopped."""
    with RawServer(phase, interval_s=0.3, limit_s=20.0) as server:
        cache = make_cache(total_timeout_s=2.0, read_timeout_s=1.0, connect_timeout_s=1.0)
        error = _fails(cache, server.url(), ErrorCode.VOICE_FETCH_FAILED)
        assert "took longer than 2 s" in error.message, error.message
        assert server.cut.wait(10), "the download did not hang up while the server dripped"


def test_https_download_pins_the_address_and_sends_sni(make_cache: MakeCache) -> None:
    """TLS through the deadline backend: the certificate is checked against the URL's host
    name, sent as SNI, while the connection goes to the address vetted for it."""
    server_context, client_context = tls_contexts("voices.example")
    data = voice_bytes()
    with RawServer("https", body=data, tls_context=server_context) as server:
        resolver = FakeResolver({"voices.example": ["127.0.0.1"]})
        cache = make_cache(resolver=resolver, verify=client_context)
        fetched = cache.fetch(server.url(host="voices.example"))
        assert fetched.sha256 == hashlib.sha256(data).hexdigest()
        assert server.server_names == ["voices.example"]
        wrong = make_cache(root=cache.root.parent / "wrong", resolver=resolver)
        error = _fails(wrong, server.url(host="voices.example") + "?v=2",
                       ErrorCode.VOICE_FETCH_FAILED)
        assert "certificate" in error.message.lower() or "tls" in error.message.lower()


class FakeResolver:
    """Names map to addresses; nothing else resolves."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names

    def __call__(self, host: str, port: int) -> list[str]:
        return self.names.get(host, [])


def test_stalled_body_hits_the_read_timeout(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    url = server.stall("/stall.wav")
    error = _fails(make_cache(read_timeout_s=0.5), url, ErrorCode.VOICE_FETCH_FAILED)
    assert "read timeout" in error.message


def test_refused_connection_is_a_fetch_failure(make_cache: MakeCache) -> None:
    port = closed_port()
    error = _fails(
        make_cache(), f"http://127.0.0.1:{port}/v.wav", ErrorCode.VOICE_FETCH_FAILED
    )
    assert "cannot connect" in error.message


@pytest.mark.parametrize("status", [403, 404, 500, 503])
def test_http_errors_name_status_and_host_but_not_the_token(
    status: int, server: ScriptedServer, make_cache: MakeCache
) -> None:
    url = server.status("/private.wav", status) + "?X-Amz-Signature=SIGNED-TOKEN-123"
    error = _fails(make_cache(), url, ErrorCode.VOICE_FETCH_FAILED)
    assert f"HTTP {status}" in error.message
    assert f"127.0.0.1:{server.port}" in error.message
    assert "SIGNED-TOKEN-123" not in error.message


def test_logs_never_hold_the_signed_query(
    server: ScriptedServer, make_cache: MakeCache, debug_logs: pytest.LogCaptureFixture
) -> None:
    url = server.file("/voice.wav", voice_bytes()) + "?token=SIGNED-TOKEN-456"
    cache = make_cache()
    cache.fetch(url)
    with pytest.raises(WorkerError):
        cache.fetch(server.status("/gone.wav", 410) + "?token=SIGNED-TOKEN-456")
    assert "voice downloaded" in debug_logs.text
    assert "SIGNED-TOKEN-456" not in debug_logs.text
    assert "SIGNED-TOKEN-456" not in (cache.root / "index.json").read_text()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<html>not a voice</html>" * 100, "not a recognised audio file"),
        (b"", "not a recognised audio file"),
        (voice_bytes()[: len(voice_bytes()) // 2], "truncated"),
        (voice_bytes()[:44], "truncated"),
        (voice_bytes(fmt="FLAC")[:3000], "truncated or corrupt"),
        (silent_wav(), "silent"),
        (voice_bytes(amplitude=0.0005), "silent"),
        (voice_bytes(0.2), "too short"),
        (flac_claiming_hours(2.0), "too long"),
        (voice_bytes(2.0, 4_000), "sample rate"),
    ],
    ids=["html", "empty", "half-wav", "header-only-wav", "cut-flac", "silent",
         "whisper-quiet", "too-short", "hours-long-header", "low-rate"],
)
def test_files_that_are_not_usable_voices_are_refused_and_not_kept(
    body: bytes, expected: str, server: ScriptedServer, make_cache: MakeCache
) -> None:
    url = server.file("/bad.wav", body)
    cache = make_cache()
    error = _fails(cache, url, ErrorCode.VOICE_NOT_AUDIO)
    assert expected in error.message
    assert cache.stats()["entries"] == 0
    assert _blob_files(cache) == []


def test_a_real_ten_minute_file_is_refused_as_too_long(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    url = server.file("/long.wav", voice_bytes(601.0, 8_000))
    error = _fails(make_cache(), url, ErrorCode.VOICE_NOT_AUDIO)
    assert "too long" in error.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (flac_hiding_length(2.0, 60.0), "holds more audio than its header declares"),
        (flac_hiding_length(2.0, 30.0, 48_000, 2), "holds more audio than its header declares"),
        (flac_dense(655_350, 8, 2), "at most 192000 Hz"),
        (flac_dense(48_000, 3, 2), "3 channels"),
    ],
    ids=["header-hides-58-s", "stereo-48k-header-hides-28-s", "655khz-8-channels",
         "three-channels"],
)
def test_decode_bombs_are_refused_without_decoding_past_the_cap(
    body: bytes, expected: str, server: ScriptedServer, make_cache: MakeCache
) -> None:
    """Issue 11 finding 1: the header no longer decides how much is decoded, and the rate and
    channel count are bounded (before the fix all four were accepted)."""
    url = server.file("/bomb.flac", body, content_type="audio/flac")
    cache = make_cache()
    error = _fails(cache, url, ErrorCode.VOICE_NOT_AUDIO)
    assert expected in error.message
    assert cache.stats()["entries"] == 0 and _blob_files(cache) == []


def test_the_reference_is_the_first_minute_at_the_model_rate(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    """A long stereo voice at 48 kHz is handed to the model as its first 60 s, mono, 22 050 Hz:
    the model never decodes the downloaded file."""
    long_voice = voice_bytes(90.0, 48_000)
    signal, _ = sf.read(io.BytesIO(long_voice), dtype="int16")
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([signal, signal], axis=1), 48_000, format="FLAC")
    url = server.file("/long.flac", buffer.getvalue(), content_type="audio/flac")
    fetched = make_cache().fetch(url)
    assert fetched.duration_s == pytest.approx(90.0, abs=0.05)
    assert fetched.sample_rate == 48_000
    _assert_reference_of(fetched.path, buffer.getvalue())
    assert fetched.bytes < 60 * REFERENCE_RATE * 4 + 1024


def test_checksum_mismatch_is_refused_and_not_cached(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    data = voice_bytes()
    url = server.file("/voice.wav", data)
    cache = make_cache()
    wrong = hashlib.sha256(b"something else").hexdigest()

    error = _fails(cache, url, ErrorCode.VOICE_CHECKSUM_MISMATCH, expected_sha256=wrong)
    assert wrong in error.message
    assert cache.stats()["entries"] == 0

    right = hashlib.sha256(data).hexdigest()
    assert cache.fetch(url, expected_sha256=right.upper()).sha256 == right


def test_malformed_expected_checksum_is_invalid_input(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    url = server.file("/voice.wav", voice_bytes())
    error = _fails(make_cache(), url, ErrorCode.INVALID_INPUT, expected_sha256="abc")
    assert error.field == "voice_sha256"
    assert server.total_hits == 0


def test_known_content_is_a_hit_whatever_the_signed_url(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    data = voice_bytes()
    base = server.file("/voice.wav", data)
    sha = hashlib.sha256(data).hexdigest()
    cache = make_cache()
    assert cache.fetch(base + "?token=first", expected_sha256=sha).cache == "miss"
    assert cache.fetch(base + "?token=second", expected_sha256=sha).cache == "hit"
    assert server.hits["/voice.wav"] == 1


def test_redirects_are_followed_up_to_the_limit(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    server.file("/final.wav", voice_bytes())
    for hop in range(3):
        target = "/final.wav" if hop == 0 else f"/hop{hop - 1}"
        server.redirect(f"/hop{hop}", target)
    cache = make_cache(max_redirects=3)
    assert cache.fetch(server.url("/hop2")).cache == "miss"

    limited = make_cache(root=cache.root.parent / "other", max_redirects=2)
    error = _fails(limited, server.url("/hop2"), ErrorCode.VOICE_FETCH_FAILED)
    assert "more than 2 times" in error.message


def test_redirect_without_location_fails(server: ScriptedServer, make_cache: MakeCache) -> None:
    url = server.status("/nowhere", 302)
    assert "Location" in _fails(make_cache(), url, ErrorCode.VOICE_FETCH_FAILED).message


def test_least_recently_used_files_are_evicted_over_the_total_cap(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    voices = {name: voice_bytes(2.0, pitch_hz=pitch) for name, pitch in
              (("a", 150.0), ("b", 200.0), ("c", 250.0))}
    urls = {name: server.file(f"/{name}.wav", data) for name, data in voices.items()}
    size = make_cache().fetch(urls["a"]).bytes  # every reference of 2 s has this size
    cache = make_cache(max_total_bytes=int(size * 2.5))
    cache.fetch(urls["a"])
    cache.fetch(urls["b"])
    assert cache.fetch(urls["a"]).cache == "hit"  # b is now the least recently used
    cache.fetch(urls["c"])

    stats = cache.stats()
    assert stats["evictions"] == 1
    assert stats["entries"] == 2 and stats["total_bytes"] <= size * 2.5
    assert cache.fetch(urls["a"]).cache == "hit"
    assert cache.fetch(urls["c"]).cache == "hit"
    assert cache.fetch(urls["b"]).cache == "miss"
    assert server.hits["/b.wav"] == 2 and server.hits["/a.wav"] == 1
    assert server.hits["/c.wav"] == 1


def test_a_file_larger_than_the_whole_cache_is_still_served(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    data = voice_bytes()
    url = server.file("/voice.wav", data)
    cache = make_cache(max_total_bytes=len(data) // 2)
    _assert_reference_of(cache.fetch(url).path, data)


@pytest.mark.parametrize("damage", ["flip-a-byte", "truncate", "delete"])
def test_damaged_cached_file_is_detected_and_fetched_again(
    damage: str, server: ScriptedServer, make_cache: MakeCache
) -> None:
    data = voice_bytes()
    url = server.file("/voice.wav", data)
    cache = make_cache()
    path = cache.fetch(url).path
    reference = path.read_bytes()
    if damage == "flip-a-byte":
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw))
    elif damage == "truncate":
        path.write_bytes(data[:100])
    else:
        path.unlink()

    again = cache.fetch(url)

    assert again.cache == "miss"
    assert again.path.read_bytes() == reference
    assert server.hits["/voice.wav"] == 2
    assert cache.stats()["corrupt_replaced"] == (0 if damage == "delete" else 1)


def test_index_survives_a_new_cache_on_the_same_root(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    url = server.file("/voice.wav", voice_bytes())
    make_cache().fetch(url)
    assert make_cache().fetch(url).cache == "hit"
    assert server.hits["/voice.wav"] == 1


def test_disk_full_evicts_and_retries_once(
    server: ScriptedServer, make_cache: MakeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_url = server.file("/old.wav", voice_bytes(pitch_hz=150.0))
    new_url = server.file("/new.wav", voice_bytes(pitch_hz=260.0))
    cache = make_cache()
    cache.fetch(old_url)
    real_write = cache._write_blob_file
    attempts: list[Path] = []

    def full_once(path: Path, data: bytes) -> None:
        attempts.append(path)
        if len(attempts) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(cache, "_write_blob_file", full_once)
    fetched = cache.fetch(new_url)

    assert len(attempts) == 2
    assert fetched.path.is_file()
    stats = cache.stats()
    assert stats["evictions"] == 1 and stats["entries"] == 1


def test_disk_that_stays_full_gives_a_clear_error(
    server: ScriptedServer, make_cache: MakeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.file("/voice.wav", voice_bytes())
    cache = make_cache()

    def always_full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache, "_write_blob_file", always_full)
    error = _fails(cache, url, ErrorCode.VOICE_FETCH_FAILED)
    assert "full" in error.message and "HONORA_VOICE_CACHE" in error.message
    assert cache.stats()["entries"] == 0


def test_a_cache_from_the_worker_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HONORA_VOICE_CACHE", str(tmp_path / "from-env"))
    monkeypatch.setenv("HONORA_ALLOW_PRIVATE_URLS", "0")
    cache = VoiceCache.from_settings(WorkerSettings.from_env())
    try:
        assert cache.root == tmp_path / "from-env"
        assert cache.policy.allow_private is False
    finally:
        cache.close()


# ---------------------------------------------------------------------------- issue 11 #4


def _plant_index(root: Path, records: dict[str, dict[str, object]]) -> None:
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    index = {"version": cache_module._INDEX_VERSION, "urls": {}, "blobs": records}
    (root / "index.json").write_text(json.dumps(index))


def _planted_record(file: str, size: int = 10**12) -> dict[str, object]:
    return {"file": file, "bytes": size, "file_sha256": "0" * 64, "duration_s": 2.0,
            "sample_rate": 16_000, "last_used": 0.0, "id": "planted"}


def test_planted_index_records_cannot_delete_files_outside_the_cache(
    tmp_path: Path, make_cache: MakeCache, server: ScriptedServer
) -> None:
    """Issue 11 #4: an index record naming a file outside the cache (absolute or ``..``) used
    to be evicted at start-up, deleting that file. Such records are now dropped untouched."""
    victims = [tmp_path / "victim-absolute.txt", tmp_path / "victim-relative.txt"]
    for victim in victims:
        victim.write_text("precious")
    root = tmp_path / "voice-cache"
    _plant_index(root, {
        "a" * 64: _planted_record(str(victims[0])),
        "b" * 64: _planted_record("../../victim-relative.txt"),
    })
    cache = make_cache(root=root, max_total_bytes=1)
    cache.fetch(server.file("/voice.wav", voice_bytes()))  # evicts down to the 1-byte cap
    assert all(victim.read_text() == "precious" for victim in victims)
    assert cache.stats()["entries"] == 1


def test_a_blobs_link_or_a_root_others_control_is_refused(
    tmp_path: Path, make_cache: MakeCache
) -> None:
    """Issue 11 #4: a ``blobs`` symbolic link used to be followed (orphan clean-up deleted the
    files it pointed at); a root owned by another user or writable by others was trusted."""
    victim_dir = tmp_path / "victim"
    victim_dir.mkdir()
    (victim_dir / "old.txt").write_text("precious")
    os.utime(victim_dir / "old.txt", (0, 0))  # older than the orphan grace period
    linked = tmp_path / "linked-cache"
    linked.mkdir(mode=0o700)
    (linked / "blobs").symlink_to(victim_dir)
    with pytest.raises(UnsafeCacheRoot, match="symbolic link") as caught:
        make_cache(root=linked)
    assert caught.value.code == ErrorCode.INTERNAL_ERROR and "HONORA_VOICE_CACHE" in str(caught.value)
    assert (victim_dir / "old.txt").read_text() == "precious"

    shared = tmp_path / "shared-cache"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UnsafeCacheRoot, match="others can write"):
        make_cache(root=shared)
    link_root = tmp_path / "link-root"
    link_root.symlink_to(victim_dir)
    with pytest.raises(UnsafeCacheRoot, match="symbolic link"):
        make_cache(root=link_root)
    if os.geteuid() == 0:
        foreign = tmp_path / "foreign-cache"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, 65534, 65534)
        with pytest.raises(UnsafeCacheRoot, match="belongs to uid 65534"):
            make_cache(root=foreign)


def test_cache_directories_are_0700_and_files_0600(
    tmp_path: Path, make_cache: MakeCache, server: ScriptedServer
) -> None:
    """Issue 11 #4: blobs used to be world-readable (0644) under a 0755 root."""
    root = tmp_path / "voice-cache"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    cache = make_cache(root=root)
    fetched = cache.fetch(server.file("/voice.wav", voice_bytes()))
    for directory in (root, root / "blobs", root / "locks"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    files = [fetched.path, root / "index.json", root / "index.lock", *(root / "locks").iterdir()]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
