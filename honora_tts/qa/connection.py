"""Which endpoint a notebook talks to, from its parameters.

``endpoint = "localpod"`` means the local endpoint: a running localpod, else one started for
the kernel (tiny random-weights model: noise). Anything else is a RunPod endpoint id, reached
at ``api_base`` (default ``RUNPOD_API_BASE``, else RunPod's API) with ``api_key`` (default
``RUNPOD_API_KEY``). Keep keys in the environment: notebook parameters are written into the
executed notebook, environment variables are not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from honora_tts.client import EndpointClient
    from honora_tts.client.management import ManagementClient
    from honora_tts.client.management_models import WorkerList

LOCALPOD = "localpod"


def connect(endpoint: str = LOCALPOD, api_base: str = "", api_key: str = "",
            mode: str = "", **client_options: Any) -> EndpointClient:
    """An :class:`~honora_tts.client.EndpointClient` for a notebook's endpoint parameters.
    ``mode``: ``queue`` or ``load_balancing`` (empty: ``HONORA_ENDPOINT_MODE``, else what a
    running localpod is)."""
    from honora_tts.client import ConfigurationError, EndpointClient

    endpoint = (endpoint or "").strip()
    if not endpoint:
        raise ConfigurationError(
            f"the endpoint parameter is empty: use {LOCALPOD!r} or a RunPod endpoint id"
        )
    if mode.strip():
        client_options["mode"] = mode.strip()
    client = EndpointClient.from_env(
        endpoint=endpoint, api_key=api_key or None, api_base=api_base or None, **client_options
    )
    if endpoint.lower() != LOCALPOD or api_base:
        client.source = "parameters"
    return client


def platform_workers(client: EndpointClient, management_api_base: str = "") -> WorkerList | None:
    """The platform's list of the endpoint's workers (management API ``/workers``, at
    ``management_api_base``, else ``RUNPOD_MANAGEMENT_API_BASE``, else localpod's or RunPod's);
    None where it cannot be reached."""
    from honora_tts.client.platform import platform_workers as lookup

    return lookup(client, _management_base(management_api_base))


def management(client: EndpointClient, management_api_base: str = "") -> ManagementClient:
    """A management API client for the notebook's endpoint (its management key:
    ``RUNPOD_MANAGEMENT_API_KEY``, else the job API's; base as for :func:`platform_workers`)."""
    from honora_tts.client.platform import management_client_for

    return management_client_for(client, _management_base(management_api_base))


def _management_base(given: str) -> str | None:
    from honora_tts.settings import ClientSettings

    return given.strip() or ClientSettings.from_env().management_api_base


def describe(client: EndpointClient) -> dict[str, str]:
    """What may be printed about the endpoint: id, API base and where they came from. Never
    the API key."""
    return {"endpoint_id": client.endpoint_id, "api_base": client.api_base,
            "source": str(getattr(client, "source", "arguments")),
            "mode": str(getattr(client, "mode", "queue"))}
