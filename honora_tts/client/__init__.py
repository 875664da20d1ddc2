"""RunPod endpoint client for honora's XTTS workers.

>>> from honora_tts.client import EndpointClient
>>> client = EndpointClient.from_env()  # RUNPOD_ENDPOINT_ID, RUNPOD_API_KEY
>>> local = EndpointClient.from_env(endpoint="localpod")  # opt in to a local endpoint
>>> result = client.synthesize("Hello world.", voice="voices/billy.wav")
>>> result.save("hello.wav")
"""

from honora_tts.client._base_client import RetryPolicy, new_request_id
from honora_tts.client._exceptions import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    EndpointNotConfigured,
    EndpointUnavailable,
    HonoraClientError,
    InvalidRequest,
    InvalidResponse,
    JobCancelled,
    JobError,
    JobFailed,
    JobTimedOut,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RequestIdMismatch,
    ResponseTooLarge,
    StaleWorkerError,
    SubmissionUncertain,
    VoiceUploadFailed,
)
from honora_tts.client.census_report import Census, CensusGroup, CensusProbe
from honora_tts.client.endpoint import EndpointClient
from honora_tts.client.resources.synthesis import SynthesisStream
from honora_tts.client.results import (
    AudioChunk,
    BatchResult,
    EndpointHealth,
    HealthReport,
    JobStatus,
    SectionOutcome,
    SectionRequest,
    SynthesisResult,
    Timings,
)

__all__ = [
    "APIError",
    "AudioChunk",
    "AuthenticationError",
    "BatchResult",
    "Census",
    "CensusGroup",
    "CensusProbe",
    "ConfigurationError",
    "EndpointClient",
    "EndpointHealth",
    "EndpointNotConfigured",
    "EndpointUnavailable",
    "HealthReport",
    "HonoraClientError",
    "InvalidRequest",
    "InvalidResponse",
    "JobCancelled",
    "JobError",
    "JobFailed",
    "JobStatus",
    "JobTimedOut",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RequestIdMismatch",
    "ResponseTooLarge",
    "RetryPolicy",
    "SectionOutcome",
    "SectionRequest",
    "StaleWorkerError",
    "SubmissionUncertain",
    "SynthesisResult",
    "SynthesisStream",
    "Timings",
    "VoiceUploadFailed",
    "new_request_id",
]
