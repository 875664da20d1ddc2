"""Limits and defaults of the RunPod endpoint client, in one place.

Payload limits are RunPod's documented ones, counted in decimal megabytes so that the client
refuses before RunPod would.
"""

from __future__ import annotations

import httpx

from honora_tts.settings import DEFAULT_API_BASE, ClientSettings

__all__ = ["DEFAULT_API_BASE"]

#: The variables the client's messages name (declared in :mod:`honora_tts.settings`).
_ENV_NAMES = ClientSettings.env_names()
ENV_API_KEY = _ENV_NAMES["api_key"]
ENV_ENDPOINT_ID = _ENV_NAMES["endpoint_id"]
ENV_API_BASE = _ENV_NAMES["api_base"]

REQUEST_ID_HEADER = "X-Request-ID"

#: ``/run`` accepts at most 10 MB of JSON, ``/runsync`` 20 MB.
RUN_PAYLOAD_LIMIT_BYTES = 10_000_000
RUNSYNC_PAYLOAD_LIMIT_BYTES = 20_000_000

#: The most bytes the client reads from one response body after decompression (JSON answers
#: and audio downloads alike): a gzip answer of 300 KB may inflate to 300 MB.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: Content encodings the client asks for and inflates itself, under the cap above.
ACCEPT_ENCODING = "gzip, deflate"
#: The deepest nesting of arrays and objects an answer may have, the answer itself counting as
#: one. honora's answers nest about 8 deep (status, output, sections, timings); RunPod's a few
#: more. A deeper one is refused as InvalidResponse before anything walks it.
MAX_ANSWER_DEPTH = 64

#: Per-operation timeouts: connecting must be quick; reading a result may take a while. One
#: attempt never lasts longer than its connect + write + read timeouts together, whatever the
#: server does (a byte every second included).
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0)
#: A call given no deadline of its own (``GET /health``, a management API read) ends, retries
#: included, within this many seconds.
CALL_DEADLINE_S = 120.0
#: The longest a single synthesis job may take, queue included, before it is cancelled.
DEFAULT_DEADLINE_S = 300.0
#: Health probes answer fast or not at all.
DEFAULT_HEALTH_DEADLINE_S = 60.0

#: Attempts per HTTP call (the first try included) and the backoff between them.
DEFAULT_MAX_ATTEMPTS = 5
RETRY_INITIAL_DELAY_S = 0.25
RETRY_MAX_DELAY_S = 8.0
RETRY_JITTER_S = 0.25
#: A ``Retry-After`` longer than this is not waited for: the call fails with RateLimited.
RETRY_AFTER_CAP_S = 60.0
RETRYABLE_STATUS_CODES = frozenset({429, 502, 503, 504})

#: Polling ``/status`` and ``/stream``: fast first polls (latency matters), then at most 4 per
#: second per job (RunPod allows 2000 status calls per 10 s).
POLL_INITIAL_S = 0.05
POLL_GROWTH = 1.5
POLL_MAX_S = 0.25

#: RunPod's bounds on a job's policy (milliseconds).
EXECUTION_TIMEOUT_MIN_MS = 5_000
EXECUTION_TIMEOUT_MAX_MS = 7 * 24 * 3600 * 1000
TTL_MIN_MS = 10_000
#: The TTL counts from submission and covers the result's retention: keep it past the deadline.
TTL_MARGIN_MS = 10 * 60 * 1000

#: ``/runsync``: how long RunPod keeps a result (``?wait=``), bounds in milliseconds.
RUNSYNC_WAIT_MIN_MS = 1_000
RUNSYNC_WAIT_MAX_MS = 300_000

FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
