"""Voices: the worker-side voice-file cache and the client-side voice stores.

Worker: :class:`VoiceCache` (one per worker, built at start-up) turns a ``voice_url`` into a checked
local file (SSRF-safe download, size and time limits, validation, LRU eviction).
Client: :func:`voice_store_from_env` picks a :class:`VoiceStore` (local HTTP directory, S3,
Supabase) that uploads a voice once and returns the URL a request carries.
"""

from honora_tts.voices.cache import VoiceCache, VoiceFile
from honora_tts.voices.local_store import LocalVoiceStore
from honora_tts.voices.store_factory import voice_store_from_env
from honora_tts.voices.stores import StoredVoice, VoiceStore, VoiceStoreError
from honora_tts.voices.url_safety import UrlPolicy, describe_url

__all__ = [
    "LocalVoiceStore",
    "StoredVoice",
    "UrlPolicy",
    "VoiceCache",
    "VoiceFile",
    "VoiceStore",
    "VoiceStoreError",
    "describe_url",
    "voice_store_from_env",
]


def __getattr__(name: str) -> object:
    # The S3 and Supabase stores import their SDKs (the [stores] extra): only when asked for.
    from honora_tts.voices import store_factory

    if name == "S3VoiceStore":
        return store_factory.s3_store_class()
    if name == "SupabaseVoiceStore":
        return store_factory.supabase_store_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
