"""Client of RunPod's management API (REST API v2, base ``https://api.runpod.io/v2``): read a
serverless endpoint, its workers and its release history, and change its image or worker bounds.

It is not the job API (``https://api.runpod.ai/v2/{endpoint_id}/run`` ...): another host, and
its own key where one is set (``RUNPOD_MANAGEMENT_API_KEY``; else ``RUNPOD_API_KEY``, which
serves both on RunPod when its scope allows). HTTP goes through the job client's transport
(:class:`~honora_tts.client._base_client.BaseClient`), so the wall-clock deadline, bounded
bodies, redaction and the retry rule are the same: reads and ``PATCH`` (which sets fields to
values, so sending it twice changes nothing more) are retried on connection failures,
timeouts, 429 (honouring ``Retry-After``) and 502/503/504.

Errors name what to do: :class:`ManagementKeyRefused` (401/403), :class:`UnknownEndpoint`
(404), :class:`ChangeRefused` (400/422: nothing was changed), :class:`ManagementUnavailable`.
localpod serves the same API on its own port (``honora-tts localpod`` prints the base).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from honora_tts.client import _constants as C
from honora_tts.client._base_client import BaseClient, RetryPolicy, new_request_id
from honora_tts.client._exceptions import (
    APIError,
    AuthenticationError,
    EndpointUnavailable,
    InvalidRequest,
    InvalidResponse,
    NotFound,
)
from honora_tts.client.management_models import Endpoint, ReleaseHistory, WorkerList
from honora_tts.redaction import mask
from honora_tts.settings import DEFAULT_MANAGEMENT_API_BASE, ClientSettings

#: The variables a caller reads the base and the key from (this module takes them as
#: arguments).
ENV_MANAGEMENT_API_BASE = ClientSettings.env_names()["management_api_base"]
ENV_MANAGEMENT_API_KEY = ClientSettings.env_names()["management_api_key"]

_ENDPOINT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
M = TypeVar("M", bound=BaseModel)


class ManagementKeyRefused(AuthenticationError):
    """401/403 from the management API: the key is wrong, or lacks access to the endpoint."""


class UnknownEndpoint(NotFound):
    """404 from the management API: no serverless endpoint with that id for this key."""


class ChangeRefused(APIError):
    """400/422: RunPod refused a change (invalid field or value); nothing was changed."""


class ManagementUnavailable(EndpointUnavailable):
    """The management API could not be reached, or answered 5xx after the safe retries."""


class ManagementClient:
    """RunPod's management API for serverless endpoints. Thread-safe."""

    def __init__(
        self,
        api_key: str,
        api_base: str = DEFAULT_MANAGEMENT_API_BASE,
        *,
        timeout: httpx.Timeout = C.DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key or not api_key.strip():
            raise ManagementKeyRefused(
                "no API key for the management API: create one in the RunPod console "
                "(Settings > API Keys, with access to Serverless) and pass it "
                f"({ENV_MANAGEMENT_API_KEY}, or RUNPOD_API_KEY when one key serves both APIs)."
            )
        base = api_base.strip().rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise InvalidRequest(
                f"the management API base must be an http(s) URL such as "
                f"{DEFAULT_MANAGEMENT_API_BASE}, got {api_base!r} ({ENV_MANAGEMENT_API_BASE})"
            )
        self.api_base = base
        self._base = BaseClient(
            base_url=f"{base}/serverless", api_key=api_key.strip(), timeout=timeout,
            retry=retry, transport=transport, sleep=sleep,
        )
        self._key = api_key.strip()

    def __repr__(self) -> str:
        return f"ManagementClient(api_base={self.api_base!r}, api_key={mask(self._key)})"

    def close(self) -> None:
        self._base.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ operations

    def endpoint(self, endpoint_id: str) -> Endpoint:
        """``GET /serverless/{id}``."""
        return self._call("GET", endpoint_id, "", Endpoint)

    def workers(self, endpoint_id: str) -> WorkerList:
        """``GET /serverless/{id}/workers``: the active workers, each with ``version``,
        ``is_stale``, ``image`` and ``status``."""
        return self._call("GET", endpoint_id, "/workers", WorkerList)

    def releases(self, endpoint_id: str) -> ReleaseHistory:
        """``GET /serverless/{id}/releases``: release history (newest first) and rollout."""
        return self._call("GET", endpoint_id, "/releases", ReleaseHistory)

    def update_endpoint(
        self,
        endpoint_id: str,
        *,
        image: str | None = None,
        workers_min: int | None = None,
        workers_max: int | None = None,
    ) -> Endpoint:
        """``PATCH /serverless/{id}`` with only the given fields. A new image starts a rolling
        release (idle workers replaced at once, busy ones after their current job)."""
        body: dict[str, Any] = {}
        if image is not None:
            body["image"] = image
        bounds = {k: v for k, v in (("min", workers_min), ("max", workers_max)) if v is not None}
        if any(v < 0 for v in bounds.values()):
            raise InvalidRequest(f"worker bounds must be at least 0, got {bounds}")
        if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
            raise InvalidRequest(f"workers min {bounds['min']} exceeds max {bounds['max']}")
        if bounds:
            body["workers"] = bounds
        if not body:
            raise InvalidRequest("nothing to change: give an image or worker bounds")
        return self._call("PATCH", endpoint_id, "", Endpoint, body=body)

    # ------------------------------------------------------------------ internals

    def _call(
        self, method: str, endpoint_id: str, suffix: str, model: type[M], *, body: Any = None
    ) -> M:
        if not isinstance(endpoint_id, str) or not _ENDPOINT_ID.match(endpoint_id):
            raise InvalidRequest(
                f"{endpoint_id!r} is not a RunPod endpoint id (letters, digits, '-' and '_'; "
                "the id is in the endpoint's URL in the RunPod console)"
            )
        route = f"{method} /serverless/{endpoint_id}{suffix}"
        request_id = new_request_id()
        try:
            data = self._base.request(
                method, f"{endpoint_id}{suffix}", body=body, request_id=request_id
            )
        except AuthenticationError as exc:
            raise ManagementKeyRefused(
                f"{route} was refused ({exc.status_code}): the management API key is wrong, or "
                f"has no access to serverless endpoint {endpoint_id}. Use a key with read/write "
                f"access to Serverless (RunPod console > Settings > API Keys) in "
                f"{ENV_MANAGEMENT_API_KEY} (localpod prints its own).",
                status_code=exc.status_code, request_id=request_id,
            ) from exc
        except NotFound as exc:
            raise UnknownEndpoint(
                f"{route} answered 404: no serverless endpoint {endpoint_id!r} for this key. "
                "Check the id (RunPod console > Serverless > the endpoint; the id is in its "
                f"URL) and that the key belongs to the account that owns it. Management API "
                f"base: {self.api_base}.",
                status_code=404, request_id=request_id,
            ) from exc
        except EndpointUnavailable as exc:
            raise ManagementUnavailable(
                f"{route}: the management API at {self.api_base} is unavailable ({exc}). "
                f"Check {ENV_MANAGEMENT_API_BASE} and the network; nothing was changed unless "
                "a later read shows it.",
                status_code=exc.status_code, request_id=request_id,
            ) from exc
        except APIError as exc:
            if exc.status_code in (400, 409, 422):
                raise ChangeRefused(
                    f"{route} was refused ({exc.status_code}); nothing was changed: "
                    f"{_answer(exc)}",
                    status_code=exc.status_code, request_id=request_id,
                ) from exc
            raise
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise InvalidResponse(
                f"{route} answered a body that is not a {model.__name__} as RunPod's OpenAPI "
                f"file defines it: {exc.errors()[:3]}",
                request_id=request_id,
            ) from exc


def _answer(exc: APIError) -> str:
    """The body RunPod answered, out of the transport's message ("... answered N: BODY [ids]")."""
    text = exc.message.rsplit(" [request_id=", 1)[0]
    marker = f"answered {exc.status_code}: "
    return text.split(marker, 1)[1] if marker in text else text
