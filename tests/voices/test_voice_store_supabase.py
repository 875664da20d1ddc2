"""SupabaseVoiceStore (storage3) against a local imitation of the Supabase Storage endpoints
(tests/fixtures/fake_supabase_storage.py), not against Supabase itself."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from voice_test_support import assert_secret_absent, closed_port, voice_bytes

from honora_tts.voices.stores import VoiceStoreError
from honora_tts.voices.supabase_store import SupabaseVoiceStore


@pytest.fixture
def voice(tmp_path: Path) -> Path:
    path = tmp_path / "narrator.wav"
    path.write_bytes(voice_bytes())
    return path


def test_upload_once_with_signed_urls(fake_supabase: Any, supabase_key: str, voice: Path) -> None:
    sha = hashlib.sha256(voice.read_bytes()).hexdigest()
    with SupabaseVoiceStore(fake_supabase.url, supabase_key, url_ttl_s=300) as store:
        first = store.upload(voice)
        second = store.upload(voice)

    assert first.key == second.key == f"{sha}.wav"
    assert (first.uploaded, second.uploaded) == (True, False)
    assert fake_supabase.counts["uploads"] == 1
    assert fake_supabase.objects[("voices", f"{sha}.wav")].content_type == "audio/wav"
    assert first.url.startswith(f"{fake_supabase.url}/storage/v1/object/sign/voices/{sha}.wav?")
    assert "token=" in first.url and "token=" not in repr(first)
    response = httpx.get(second.url)
    assert response.status_code == 200 and response.content == voice.read_bytes()
    tampered = first.url[:-4] + "0000"
    assert httpx.get(tampered).status_code == 400


def test_public_bucket_and_prefix(fake_supabase: Any, supabase_key: str, voice: Path) -> None:
    sha = hashlib.sha256(voice.read_bytes()).hexdigest()
    with SupabaseVoiceStore(
        fake_supabase.url + "/", supabase_key, bucket="public-voices", public=True,
        prefix="team-a/",
    ) as store:
        stored = store.upload(voice)
    assert stored.key == f"team-a/{sha}.wav"
    assert stored.url == (
        f"{fake_supabase.url}/storage/v1/object/public/public-voices/team-a/{sha}.wav"
    )
    assert httpx.get(stored.url).content == voice.read_bytes()
    assert fake_supabase.counts["sign"] == 0


def test_concurrent_upload_of_the_same_content_counts_as_present(
    fake_supabase: Any, supabase_key: str, voice: Path
) -> None:
    sha = hashlib.sha256(voice.read_bytes()).hexdigest()
    with SupabaseVoiceStore(fake_supabase.url, supabase_key) as store:
        store.upload(voice)
        fake_supabase.hidden_from_info.add(("voices", f"{sha}.wav"))
        again = store.upload(voice)
    assert again.uploaded is False
    assert fake_supabase.counts["upload_requests"] == 2 and fake_supabase.counts["uploads"] == 1
    assert store.uploads == 1


def test_wrong_key_names_the_variable_and_never_a_key(
    fake_supabase: Any, supabase_key: str, voice: Path, debug_logs: pytest.LogCaptureFixture
) -> None:
    wrong_key = "sb-wrong-key-" + "Q7" * 20
    store = SupabaseVoiceStore(fake_supabase.url, wrong_key)
    with store, pytest.raises(VoiceStoreError) as caught:
        store.upload(voice)
    message = str(caught.value)
    assert "refused the key" in message and "SUPABASE_KEY" in message
    assert fake_supabase.counts["auth_failures"] == 1
    for secret in (wrong_key, supabase_key):
        assert_secret_absent(secret, caught.value, debug_logs.text)
        assert secret not in repr(store)


def test_store_down_says_what_to_check(
    supabase_key: str, voice: Path, debug_logs: pytest.LogCaptureFixture
) -> None:
    store = SupabaseVoiceStore(f"http://127.0.0.1:{closed_port()}", supabase_key)
    with store, pytest.raises(VoiceStoreError) as caught:
        store.upload(voice)
    assert "cannot reach Supabase Storage" in str(caught.value)
    assert "SUPABASE_URL" in str(caught.value)
    assert_secret_absent(supabase_key, caught.value, debug_logs.text)


def test_missing_bucket_names_the_setting(
    fake_supabase: Any, supabase_key: str, voice: Path
) -> None:
    store = SupabaseVoiceStore(fake_supabase.url, supabase_key, bucket="nope")
    with store, pytest.raises(VoiceStoreError, match="HONORA_SUPABASE_BUCKET"):
        store.upload(voice)


def test_the_key_never_follows_a_redirect_to_another_host(
    supabase_key: str, voice: Path
) -> None:
    """Issue 11 #7: httpx strips ``Authorization`` on a cross-host redirect but not ``apikey``,
    so the service key reached whatever host the Storage URL redirected to."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[dict[str, str]] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(dict(self.headers))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_HEAD = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    class Redirecting(BaseHTTPRequestHandler):
        def _redirect(self) -> None:
            self.send_response(307)
            self.send_header("Location", f"http://localhost:{elsewhere_port}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD = do_POST = _redirect

        def log_message(self, *args: Any) -> None:
            pass

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), handler)
               for handler in (Elsewhere, Redirecting)]
    elsewhere_port = servers[0].server_address[1]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{servers[1].server_address[1]}"
        with SupabaseVoiceStore(url, supabase_key) as store, \
                pytest.raises(VoiceStoreError, match="another host") as caught:
            store.upload(voice)
        assert seen == [], "a request reached the other host"
        assert_secret_absent(supabase_key, caught.value, "")
    finally:
        for server in servers:
            server.shutdown()
