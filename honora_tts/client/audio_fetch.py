"""The audio of an answer: base64 inside it, or a URL fetched through the transport.

URL downloads go through :meth:`BaseClient.download` (the transport's retry policy, the
deadline, and the cap on decompressed bytes); either way the bytes are checked against the
worker's sha256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from honora_tts.client._base_client import BaseClient
from honora_tts.client._deadline import Deadline
from honora_tts.client._exceptions import InvalidResponse, ResponseTooLarge
from honora_tts.protocol import AudioPayload


class AudioFetcher:
    """Turns an :class:`AudioPayload` into verified audio bytes."""

    def __init__(self, transport: BaseClient) -> None:
        self.transport = transport

    def fetch(
        self, payload: AudioPayload, *, request_id: str, job_id: str, deadline: Deadline
    ) -> bytes:
        """The audio bytes; raises :class:`InvalidResponse` when they cannot be read or do not
        match the worker's sha256, :class:`ResponseTooLarge` past the client's cap."""
        ids = {"request_id": request_id, "job_id": job_id}
        if payload.delivery == "base64":
            text = payload.base64 or ""
            limit = self.transport.max_response_bytes
            if len(text) // 4 * 3 > limit:
                raise ResponseTooLarge("the base64 audio", limit, **ids)
            try:
                data = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InvalidResponse(f"the audio is not valid base64: {exc}", **ids) from exc
        elif payload.url:
            data = self.transport.download(
                payload.url, deadline=deadline, request_id=request_id, job_id=job_id
            )
        else:
            raise InvalidResponse("the audio payload has neither base64 nor a URL", **ids)
        if payload.sha256 and hashlib.sha256(data).hexdigest() != payload.sha256:
            raise InvalidResponse(
                f"the audio's sha256 does not match the worker's ({len(data)} bytes received, "
                f"{payload.bytes} sent): it was damaged on the way. Send the request again.",
                **ids,
            )
        return data
