"""localpod: a local RunPod-compatible serverless endpoint that runs real worker processes.

A control plane on 127.0.0.1 speaks RunPod's public API (``/v2/{endpoint_id}/run``, ``runsync``,
``status``, ``stream``, ``cancel``, ``retry``, ``purge-queue``, ``health``) and the worker-facing
webhooks the runpod SDK's worker loop calls (job-take, job-done, stream, job-stop, ping). Workers
are unmodified handler files (``worker/handler.py``) started as processes with the SDK's
``RUNPOD_WEBHOOK_*`` variables pointed at the control plane.

RunPod behaviours mirrored, and the choices made where RunPod documents none:

- ``/run`` -> ``{"id", "status": "IN_QUEUE"}``; ``/runsync`` ids start with ``sync-`` and the call
  waits up to ``?wait=`` ms (default 90000, clamped to 1000..300000), then answers the status
  object: with ``output`` once COMPLETED, else the current status and id, for the caller to poll.
- ``/status`` -> ``{"id", "status", "delayTime", "executionTime", "workerId", "output"?,
  "error"?}``. ``delayTime`` is the time in the queue (until a worker took the job, or until it
  ended without running); ``executionTime`` is from take to end; both in ms and only once known.
  A FAILED job carries ``error`` exactly as the worker sent it (a string or an object) and
  ``output`` when the worker returned one alongside the error. Errors localpod itself decides
  are objects ``{"code", "message"}``: ``worker_died``, ``execution_timeout``, ``ttl_expired``,
  ``result_lost``, ``result_too_large``, ``stream_chunk_too_large``, ``purged``,
  ``input_unsendable``.
- Body limits: ``/run`` 10 MB, ``/runsync`` 20 MB (MiB: 10485760 and 20971520 bytes, as
  ``runpodctl`` counts them), answered ``413`` with ``{"error": "..."}`` naming both sizes. A
  worker's job-done body over 20 MiB or a stream chunk over 1 MiB is refused with 400 and the job
  ends FAILED at once (RunPod would leave it to time out).
- Nesting: RunPod documents no limit on how deeply a body may nest. Python's JSON encoder gives
  up near 1000 levels (its recursion limit, reached sooner deep in a server's stack than at
  parse time), so localpod answers ``400 {"error"}`` to a ``/run`` or ``/runsync`` body nested
  more than 800 levels deep, the body counting as one (``MAX_NESTING_DEPTH``); deep enough for
  any real input and for the bad-input corpus's 700-level probes of the worker's own checks.
  A job's job-take JSON is built before the job is marked taken: a job whose input still
  cannot be serialised ends FAILED ``input_unsendable`` on its own, and the jobs of the same
  batch take are handed out (never lost with it).
- Auth: ``Authorization: Bearer <key>`` (or the bare key); 401 ``{"error"}`` otherwise. Unknown
  endpoint id or job id: 404 ``{"error"}``.
- Rate limits: off by default; ``rate_limit_per_10s=N`` gives each operation (run, runsync,
  status, stream, cancel, retry, purge-queue) its own sliding 10 s window of N requests; beyond
  it 429 with ``Retry-After`` (whole seconds). ``/health`` is never limited.
- Retention: a finished ``/run`` job is kept 30 min, a ``/runsync`` job 1 min; then 404.
- ``policy.executionTimeout`` (ms; default 600 s; RunPod's minimum 5 s and the TTL's 10 s are
  enforced unless ``enforce_policy_minimums=False``): past it the job is TIMED_OUT, the worker is
  told to stop it through the SDK's job-stop channel, and a worker still holding it
  ``stop_grace_s`` later (a plain synchronous handler cannot be interrupted) is killed and
  replaced. ``policy.ttl`` (ms, default 24 h) counts from submission: a job still IN_QUEUE when it
  expires ends TIMED_OUT (RunPod's job-state docs: "expired before it was picked up by a
  worker"); one still running is timed out as above. A TIMED_OUT job stays readable for the
  retention period (RunPod deletes it), so the caller learns why. ``lowPriority`` is accepted and
  changes nothing: a local fleet does not scale. ``/retry`` restarts the TTL clock.
- ``/cancel`` -> ``{"id", "status": "CANCELLED"}`` for a queued or running job (a running one
  gets a stop signal; a worker that cannot stop finishes and its late result is dropped; it is
  not killed); a job that already ended is answered with its status unchanged. A stop signal is
  sent again every second while the worker still holds the job: the SDK drops one that arrives
  between taking a job and starting it.
- ``/retry`` requeues a FAILED or TIMED_OUT job under the same id (400 otherwise).
  ``/purge-queue`` -> ``{"removed": n, "status": "completed"}``; purged jobs end CANCELLED.
- ``/stream`` -> ``{"id", "status", "stream": [{"output": chunk}, ...]}`` with only the chunks
  not delivered before (the shape ``runpod.Endpoint`` ``Job.stream()`` reads).
- ``/health`` -> ``{"jobs": {"completed", "failed", "inProgress", "inQueue", "retried",
  "cancelled", "timedOut"}, "workers": {"idle", "initializing", "ready", "running", "throttled",
  "unhealthy"}, "localpod": {...}}``: ``ready`` = idle + running, ``unhealthy`` = workers that
  died on their own or were killed in the last 60 s. Job counts cover jobs still retained.
- ``webhook``: the final status object is POSTed to it (loopback URLs only; two more tries one
  second apart when it does not answer 200).
- A worker that dies mid-job: RunPod's docs promise "automatic retries" for queue-based endpoints
  without saying when; localpod does not retry. The job ends FAILED with ``worker_died`` (so the
  crash is visible, never stuck IN_PROGRESS) and a replacement worker starts at once (after a
  backoff of 1, 2, 4 .. 30 s when workers keep dying before they are ready).
- Workers: ``initializing`` from start until their first job-take (model loaded: cold start is
  real and counts in ``delayTime``), ``ready``, ``running`` while they hold a job, ``dead``.
  Each job is handed to exactly one worker; job-take and job-stop polls are held open up to
  ``poll_hold_s`` while there is nothing to hand out (204 then). A job-take with
  ``job_in_progress=0`` releases everything the worker held; a job it never reported ends
  FAILED (``result_lost``). job-done posts are idempotent (the SDK retries them).
- Management API (RunPod's REST API v2 on the same port: ``GET|PATCH /v2/serverless/{id}``,
  ``/workers``, ``/releases``) and "images" (``images={"NAME:TAG": entry_file}``; a worker from
  an image gets ``GIT_SHA=TAG``): changing the image runs RunPod's rolling release (stale idle
  workers replaced at once, busy ones after their job). See :mod:`.releases`.
"""

from honora_tts.localpod.controlplane import LocalPodError, WorkerStartError
from honora_tts.localpod.discovery import find_running, read_state_file, state_file_path
from honora_tts.localpod.jobs import JobState
from honora_tts.localpod.pod import LocalPod

__all__ = [
    "JobState",
    "LocalPod",
    "LocalPodError",
    "WorkerStartError",
    "find_running",
    "read_state_file",
    "state_file_path",
]
