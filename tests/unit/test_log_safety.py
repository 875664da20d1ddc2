"""Issue 11 #5 (log forging) and #6 (signed URLs in logs): what reaches a log line or an error."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from honora_tts.log_safety import SafeFormatter, redact_secrets
from honora_tts.protocol import ErrorCode, ErrorInfo, parse_request
from honora_tts.untrusted_text import escape_controls

ROOT = Path(__file__).resolve().parents[2]
FORGED = "\n\x1b[2J2099-01-01 00:00:00,000 INFO honora_tts.worker: request forged: done\u2028"


def test_an_unknown_field_name_cannot_forge_the_error_field_or_message() -> None:
    """Before the fix the field name came back (and was logged) raw."""
    error = parse_request({"text": "Hello.", FORGED: 1})
    assert isinstance(error, ErrorInfo) and error.code == ErrorCode.INVALID_INPUT
    for text in (error.field, error.message):
        assert text is not None
        assert not any(ch in text for ch in "\n\r\x1b\u2028"), text
    assert error.field == escape_controls(FORGED)
    assert error.field.startswith("\\n\\x1b[2J2099-01-01")


def test_every_error_escapes_what_it_quotes() -> None:
    info = ErrorInfo(code=ErrorCode.INVALID_INPUT, message="bad \x1b]0;title\x07 \u202eevil",
                     field="a\rb")
    assert info.message == "bad \\x1b]0;title\\x07 \\u202eevil" and info.field == "a\\rb"


def _formatted(message: str, *args: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s")))
    logger = logging.getLogger("honora_tts.test_log_safety")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_log_record_is_one_record_whatever_its_arguments_hold() -> None:
    text = _formatted("section %s failed: %s", FORGED, "boom\nTraceback (most recent call last)")
    lines = text.rstrip("\n").split("\n")
    assert lines[0].startswith("WARNING honora_tts.test_log_safety: section ")
    assert all(line.startswith("    | ") for line in lines[1:]), lines
    assert "\x1b" not in text and "\u2028" not in text and "\\x1b[2J" in text


def test_signatures_tokens_and_jwts_are_masked() -> None:
    url = ("https://bucket.s3.amazonaws.com/outputs/a.wav?X-Amz-Algorithm=AWS4-HMAC-SHA256"
           "&X-Amz-Credential=AKIAEXAMPLE%2F20260101&X-Amz-Signature=deadbeefcafe"
           "&X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLE")
    masked = redact_secrets(f"HTTP Request: GET {url} \"HTTP/1.1 200 OK\"")
    for secret in ("AKIAEXAMPLE", "deadbeefcafe", "FQoGZXIvYXdzEXAMPLE"):
        assert secret not in masked
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in masked and "200 OK" in masked
    supabase = ("/storage/v1/object/sign/voices/a.wav?token=eyJhbGciOiJIUzI1NiJ9."
                "eyJ1cmwiOiJ2b2ljZXMifQ.c2lnbmF0dXJlLXZhbHVl")
    assert "eyJhbGciOiJIUzI1NiJ9" not in redact_secrets(supabase)
    assert "sb-secret" not in redact_secrets("Authorization: Bearer sb-secret-1234567890")


def test_verbose_cli_logs_no_signed_url(tmp_path: Path) -> None:
    """Issue 11 #6: ``honora-tts ... --verbose`` set up logging that printed httpx's INFO line
    with the full signed URL. The CLI's own set-up (``_run``) runs in a fresh process here,
    then fetches a signed URL from a local server, as when it downloads URL-delivered audio."""
    script = textwrap.dedent("""
        import argparse, http.server, threading, httpx
        from honora_tts.client import commands

        class Quiet(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200); self.send_header("Content-Length", "2")
                self.end_headers(); self.wfile.write(b"ok")
            def log_message(self, *a): pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = (f"http://127.0.0.1:{server.server_address[1]}/outputs/job/a.wav"
               "?X-Amz-Credential=AKIASECRETCRED&X-Amz-Signature=SECRETSIGNATURE99")
        parser = argparse.ArgumentParser()
        parser.add_argument("-v", "--verbose", action="store_true")

        def body(args, client):
            return 0 if httpx.get(url).status_code == 200 else 1

        raise SystemExit(commands._run("say", parser, ["--verbose"], body, client=object()))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True,
                          text=True, env=env, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "HTTP Request: GET" in done.stderr  # the verbose line is there...
    assert "SECRETSIGNATURE99" not in done.stderr and "AKIASECRETCRED" not in done.stderr
