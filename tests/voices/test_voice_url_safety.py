"""SSRF policy: refused URLs never reach a socket; allowed hosts are dialled at the vetted address
with the original Host header and TLS name; every redirect hop is re-checked.

No test resolves or contacts an outside host: refusals for non-local addresses are checked with
a guard that fails the test if the downloader tries to connect, and host names other than
``localhost`` go through an injected resolver."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from voice_test_support import ScriptedServer, voice_bytes

from honora_tts.protocol import ErrorCode, WorkerError
from honora_tts.settings import WorkerSettings
from honora_tts.voices.cache import VoiceCache
from honora_tts.voices.url_safety import (
    UrlPolicy,
    address_problem,
    describe_url,
    system_resolver,
)

MakeCache = Callable[..., VoiceCache]


def _no_connections(cache: VoiceCache, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make any connection attempt fail the test; returns the attempts list."""
    attempts: list[str] = []

    def refuse(vetted: object, deadline: float) -> None:
        attempts.append(repr(vetted))
        raise AssertionError(f"the downloader tried to connect: {vetted!r}")

    monkeypatch.setattr(cache._downloader, "_open", refuse)
    return attempts


def _refusal(cache: VoiceCache, url: str) -> WorkerError:
    with pytest.raises(WorkerError) as caught:
        cache.fetch(url)
    assert caught.value.field == "voice_url"
    return caught.value


class FakeDns:
    """An injected resolver: names map to addresses; unknown names do not resolve."""

    def __init__(self, table: dict[str, Sequence[str]]) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


# ---------------------------------------------------------------------------- refusals

LOOPBACK_FORMS = [
    "http://127.0.0.1:{port}/voice.wav",
    "http://localhost:{port}/voice.wav",
    "http://LOCALHOST.:{port}/voice.wav",
    "http://[::1]:{port}/voice.wav",
    "http://[::ffff:127.0.0.1]:{port}/voice.wav",
    "http://2130706433:{port}/voice.wav",
    "http://0x7f000001:{port}/voice.wav",
    "http://0177.0.0.1:{port}/voice.wav",
    "http://127.1:{port}/voice.wav",
    "http://0.0.0.0:{port}/voice.wav",
]


@pytest.mark.parametrize("template", LOOPBACK_FORMS)
def test_loopback_in_any_spelling_is_refused_without_a_request(
    template: str, server: ScriptedServer, make_cache: MakeCache
) -> None:
    server.file("/voice.wav", voice_bytes())
    cache = make_cache(allow_private=False)
    error = _refusal(cache, template.format(port=server.port))
    assert error.code == ErrorCode.VOICE_URL_FORBIDDEN
    assert server.total_hits == 0
    assert cache.stats()["refused"] == 1


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/v.wav", "private"),
        ("http://192.168.1.1/v.wav", "private"),
        ("http://172.16.0.1/v.wav", "private"),
        ("http://100.64.0.1/v.wav", "shared"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
        ("http://[fe80::1]/v.wav", "link-local"),
        ("http://[fc00::5]/v.wav", "private"),
        ("http://[::ffff:10.0.0.1]/v.wav", "private"),
        ("http://224.0.0.1/v.wav", "multicast"),
        ("http://240.0.0.1/v.wav", "reserved"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
    ],
)
def test_non_public_addresses_are_refused_before_any_connection(
    url: str, reason: str, make_cache: MakeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = make_cache(allow_private=False, resolver=FakeDns({}))
    attempts = _no_connections(cache, monkeypatch)
    error = _refusal(cache, url)
    assert error.code == ErrorCode.VOICE_URL_FORBIDDEN
    assert reason in error.message
    assert attempts == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/voice.wav",
        "data:audio/wav;base64,UklGRiQAAABXQVZFZm10IBAAAAABAAEA",
        "gopher://127.0.0.1:70/_GET",
        "javascript:alert(1)",
        "//example.com/voice.wav",
        "http://user:pass@example.com/voice.wav",
        "http://example.com@127.0.0.1/voice.wav",
        "http://exa mple.com/voice.wav",
        "http://example.com/voice.wav\r\nX-Injected: 1",
        "http:///voice.wav",
        "http://example.com:99999/voice.wav",
    ],
)
def test_malformed_or_non_http_urls_are_refused_even_with_private_allowed(
    url: str, make_cache: MakeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = make_cache(allow_private=True, resolver=FakeDns({}))
    attempts = _no_connections(cache, monkeypatch)
    assert _refusal(cache, url).code == ErrorCode.VOICE_URL_FORBIDDEN
    assert attempts == []
    assert cache.stats()["refused"] == 1


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/", "http://metadata.google.internal/",
            "http://[fd00:ec2::254]/"],
)
def test_metadata_endpoints_stay_refused_when_private_addresses_are_allowed(
    url: str, make_cache: MakeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = make_cache(allow_private=True, resolver=FakeDns({}))
    attempts = _no_connections(cache, monkeypatch)
    assert _refusal(cache, url).code == ErrorCode.VOICE_URL_FORBIDDEN
    assert attempts == []


def test_a_host_with_any_private_address_is_refused(
    make_cache: MakeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    dns = FakeDns({"voices.example.com": ["93.184.216.34", "10.1.2.3"]})
    cache = make_cache(allow_private=False, resolver=dns)
    attempts = _no_connections(cache, monkeypatch)
    error = _refusal(cache, "https://voices.example.com/v.wav")
    assert error.code == ErrorCode.VOICE_URL_FORBIDDEN
    assert "10.1.2.3" in error.message and "voices.example.com resolves to it" in error.message
    assert attempts == []


def test_unresolvable_host_is_a_fetch_failure(
    make_cache: MakeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = make_cache(allow_private=False, resolver=FakeDns({}))
    attempts = _no_connections(cache, monkeypatch)
    error = _refusal(cache, "https://no-such-host.invalid/v.wav")
    assert error.code == ErrorCode.VOICE_FETCH_FAILED
    assert "cannot resolve" in error.message
    assert attempts == []


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("::", False),
        ("0.0.0.0", False),
        ("100.64.0.1", False),
        ("::ffff:192.168.0.1", False),
        ("2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
        ("64:ff9b::7f00:1", False),  # NAT64 prefix: reserved
        ("192.0.2.1", False),  # documentation range
    ],
)
def test_address_classification(address: str, allowed: bool) -> None:
    problem = address_problem(ipaddress.ip_address(address), allow_private=False)
    assert (problem is None) is allowed, problem


def test_system_resolver_turns_numeric_forms_into_loopback() -> None:
    # Numeric host strings are parsed by getaddrinfo itself (inet_aton); no DNS query.
    for host in ("2130706433", "0x7f000001", "0177.0.0.1", "127.1", "localhost"):
        assert "127.0.0.1" in system_resolver(host, 80), host


def test_describe_url_drops_credentials_query_and_fragment() -> None:
    shown = describe_url("https://u:p@Bucket.example.com:8443/voices/a.wav?X-Amz-Signature=s#f")
    assert shown == "bucket.example.com:8443/voices/a.wav"


# ---------------------------------------------------------------------------- pinning, redirects


def test_allowed_host_is_dialled_at_the_vetted_address_with_its_host_header(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    server.file("/voice.wav", voice_bytes())
    dns = FakeDns({"voices.test": ["127.0.0.1"]})
    cache = make_cache(allow_private=False, trusted_hosts=["voices.test"], resolver=dns)

    fetched = cache.fetch(f"http://voices.test:{server.port}/voice.wav")

    assert fetched.cache == "miss"
    assert dns.calls == ["voices.test"]  # resolved once, then pinned
    assert server.hosts == [f"voices.test:{server.port}"]


def test_redirect_from_an_allowed_host_to_loopback_is_refused(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    server.file("/secret.wav", voice_bytes())
    for path, target in (
        ("/to-ip", server.url("/secret.wav")),
        ("/to-localhost", server.url("/secret.wav", host="localhost")),
        ("/to-file", "file:///etc/passwd"),
    ):
        server.redirect(path, target)
    dns = FakeDns({"voices.test": ["127.0.0.1"], "localhost": ["127.0.0.1"]})
    cache = make_cache(allow_private=False, trusted_hosts=["voices.test"], resolver=dns)

    for path in ("/to-ip", "/to-localhost", "/to-file"):
        error = _refusal(cache, f"http://voices.test:{server.port}{path}")
        assert error.code == ErrorCode.VOICE_URL_FORBIDDEN
        assert "redirect from voices.test" in error.message
        assert server.hits[path] == 1

    assert server.hits["/secret.wav"] == 0
    assert cache.stats()["refused"] == 3


def test_relative_redirect_on_an_allowed_host_is_followed(
    server: ScriptedServer, make_cache: MakeCache
) -> None:
    server.file("/voice.wav", voice_bytes())
    server.redirect("/moved", "/voice.wav", code=301)
    dns = FakeDns({"voices.test": ["127.0.0.1"]})
    cache = make_cache(allow_private=False, trusted_hosts=["voices.test"], resolver=dns)
    assert cache.fetch(f"http://voices.test:{server.port}/moved").cache == "miss"
    assert server.hits["/voice.wav"] == 1


def test_policy_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HONORA_ALLOW_PRIVATE_URLS", "1")
    monkeypatch.setenv("HONORA_TRUSTED_VOICE_HOSTS", "minio.internal, Store.Local.")
    with VoiceCache.from_settings(WorkerSettings.from_env(), root=tmp_path) as cache:
        assert cache.policy == UrlPolicy.create(
            allow_private=True, trusted_hosts={"minio.internal", "store.local"}
        )
    monkeypatch.setenv("HONORA_ALLOW_PRIVATE_URLS", "0")
    with VoiceCache.from_settings(WorkerSettings.from_env(), root=tmp_path) as cache:
        assert cache.policy.allow_private is False


# ---------------------------------------------------------------------------- TLS


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, ssl.SSLContext]]:
    """HTTPS on 127.0.0.1 with a self-signed certificate for ``voice.test`` only."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "voice.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("voice.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    data = voice_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    httpd.socket = server_context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cadata=cert_pem.decode())
    yield httpd.server_address[1], client_context
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def test_https_is_pinned_yet_verified_against_the_original_host_name(
    tls_server: tuple[int, ssl.SSLContext], make_cache: MakeCache
) -> None:
    port, client_context = tls_server
    dns = FakeDns({"voice.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    cache = make_cache(
        allow_private=False, trusted_hosts=["voice.test", "other.test"], resolver=dns,
        verify=client_context,
    )
    assert cache.fetch(f"https://voice.test:{port}/v.wav").cache == "miss"

    # Same address, but the certificate does not name other.test: refused by TLS.
    error = _refusal(cache, f"https://other.test:{port}/v.wav")
    assert error.code == ErrorCode.VOICE_FETCH_FAILED
    assert "CERTIFICATE_VERIFY_FAILED" in error.message or "certificate" in error.message
