"""What ``PATCH /v2/serverless/{id}`` may put in an endpoint's ``env`` on localpod, checked before
anything changes.

RunPod's OpenAPI file types ``env`` as an object of strings and nothing more; its docs cap a
Pod at 50 variables (``pods/templates/environment-variables``). A variable also has to survive
``execve``: a name with ``=`` or a NUL byte, or a value with a NUL byte, cannot be passed at all,
and Linux refuses one ``NAME=value`` string over 128 KiB (``MAX_ARG_STRLEN``). localpod's
workers run on this machine as this user, not in a container, so the variables that steer the
interpreter, the dynamic loader, the network or where files go would reach the host itself;
and those localpod sets to wire a worker to its control plane and to its image are its own.

So a name must be a portable one (``[A-Za-z_][A-Za-z0-9_]*``, at most :data:`MAX_NAME_CHARS`),
a value a string without NUL of at most :data:`MAX_VALUE_BYTES` (UTF-8), at most
:data:`MAX_VARIABLES` of them and :data:`MAX_TOTAL_BYTES` together; and none of these names:

- ``RUNPOD_*`` (the SDK's wiring: job-take and job-done URLs, the worker token, the pod id),
- ``PYTHON*`` (``PYTHONPATH`` ran a caller's ``sitecustomize.py``; ``PYTHONSTARTUP``, ...),
- ``LD_*``, ``DYLD_*``, ``GLIBC_TUNABLES``, ``GCONV_PATH`` and the other loader and libc
  variables of :data:`HOST_NAMES` (code loaded into every process),
- the proxy variables in any case and the TLS trust stores (traffic and trust sent elsewhere),
- what localpod sets for its workers (the image's ``GIT_SHA``, ``BUILD_TIME``,
  ``HONORA_IMAGE``, ``HONORA_ENDPOINT_VERSION``; the pod's model, threads and worker options:
  ``reserved`` as the pod passes it),
- the worker settings that take a host path (``HONORA_CACHE_DIR``, ``HONORA_VOICE_CACHE``,
  ``HONORA_XTTS_CHECKPOINT``: :data:`PATH_SETTINGS`), as image names are catalog-only.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from honora_tts.settings import WorkerSettings

MAX_VARIABLES = 50
MAX_NAME_CHARS = 255
MAX_VALUE_BYTES = 32 * 1024
MAX_TOTAL_BYTES = 128 * 1024
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Prefixes no caller may set (compared without regard to case).
RESERVED_PREFIXES = ("RUNPOD_", "PYTHON", "LD_", "DYLD_")
#: Variables of the host's interpreter, loader, libc, shell and network (any case).
HOST_NAMES = frozenset({
    "PATH", "HOME", "SHELL", "ENV", "BASH_ENV", "TMPDIR", "GLIBC_TUNABLES", "GCONV_PATH",
    "LOCPATH", "NLSPATH", "HOSTALIASES", "RESOLV_HOST_CONF", "MALLOC_CONF",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
})


def _takes_a_path(annotation: Any) -> bool:
    return annotation is Path or Path in typing.get_args(annotation)


#: Worker settings whose value is a host path.
PATH_SETTINGS = frozenset(
    name for field_name, name in WorkerSettings.env_names().items()
    if _takes_a_path(WorkerSettings.model_fields[field_name].annotation)
)


def env_refusals(env: Any, reserved: Iterable[str] = ()) -> list[str]:
    """Why ``env`` cannot be an endpoint's ``env``: one ``$.env.NAME: reason`` line per
    problem (empty when it can). ``reserved``: the names localpod sets itself."""
    if not isinstance(env, dict):
        return ["$.env: must be an object mapping names to strings"]
    own = {name.upper() for name in reserved} | PATH_SETTINGS
    problems = []
    if len(env) > MAX_VARIABLES:
        problems.append(f"$.env: {len(env)} variables; at most {MAX_VARIABLES}")
    total = 0
    for name, value in env.items():
        where = f"$.env.{name!r}" if not NAME.fullmatch(name) else f"$.env.{name}"
        if not NAME.fullmatch(name) or len(name) > MAX_NAME_CHARS:
            problems.append(
                f"{where}: a variable name is letters, digits and '_', not starting with a "
                f"digit, at most {MAX_NAME_CHARS} characters (no '=', space or NUL)"
            )
            continue
        upper = name.upper()
        if upper.startswith(RESERVED_PREFIXES):
            prefix = next(p for p in RESERVED_PREFIXES if upper.startswith(p))
            problems.append(f"{where}: {prefix}* variables are reserved (the runpod SDK's "
                            "wiring, the interpreter, the loader)")
        elif upper in HOST_NAMES:
            problems.append(f"{where}: steers the host's interpreter, loader or network; "
                            "localpod workers run on this machine, so it is reserved")
        elif upper in own:
            problems.append(f"{where}: localpod sets it for its workers (their image, model "
                            "and wiring) or it names a host path; change it with localpod's "
                            "own options")
        if not isinstance(value, str):
            problems.append(f"{where}: the value must be a string, not {type(value).__name__}")
            continue
        size = len(value.encode("utf-8", "surrogatepass"))
        total += len(name) + size + 2
        if "\x00" in value:
            problems.append(f"{where}: the value holds a NUL byte, which no process "
                            "environment can carry")
        if size > MAX_VALUE_BYTES:
            problems.append(f"{where}: the value is {size:,} bytes; at most "
                            f"{MAX_VALUE_BYTES:,}")
    if total > MAX_TOTAL_BYTES:
        problems.append(f"$.env: {total:,} bytes in all; at most {MAX_TOTAL_BYTES:,}")
    return problems
