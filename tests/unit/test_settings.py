"""The settings module: one reading rule for every variable, and README's table in step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from honora_tts.settings import (
    SETTINGS_GROUPS,
    ClientSettings,
    SettingsError,
    VoiceStoreSettings,
    WorkerSettings,
    cache_dir,
    settings_table,
)

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("raw, expected", [
    ("1", True), ("true", True), ("YES", True), ("on", True),
    ("0", False), ("false", False), ("No", False), ("off", False),
])
def test_every_flag_follows_one_truthiness_rule(raw: str, expected: bool) -> None:
    for field in ("HONORA_STREAMING", "COQUI_TOS_AGREED", "HONORA_ALLOW_PRIVATE_URLS",
                  "HONORA_FP16"):
        settings = WorkerSettings.from_env({field: raw})
        name = {v: k for k, v in WorkerSettings.env_names().items()}[field]
        assert getattr(settings, name) is expected, field


def test_a_flag_that_is_not_a_flag_is_refused_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="HONORA_STREAMING"):
        WorkerSettings.from_env({"HONORA_STREAMING": "maybe"})


def test_empty_variables_count_as_unset() -> None:
    settings = WorkerSettings.from_env({"HONORA_CONCURRENCY": "  ", "HONORA_FP16": ""})
    assert settings.concurrency is None and settings.fp16 is False


def test_the_process_environment_is_read_when_no_mapping_is_given(monkeypatch) -> None:
    monkeypatch.setenv("HONORA_TRUSTED_VOICE_HOSTS", "store.internal, cdn.internal")
    monkeypatch.setenv("HONORA_CONCURRENCY", "3")
    settings = WorkerSettings.from_env()
    assert settings.trusted_voice_hosts == ["store.internal", "cdn.internal"]
    assert settings.concurrency == 3
    assert WorkerSettings.from_env(concurrency=5).concurrency == 5


def test_bounds_and_formats_are_checked() -> None:
    with pytest.raises(SettingsError):
        WorkerSettings.from_env({"HONORA_CONCURRENCY": "0"})
    with pytest.raises(SettingsError):
        WorkerSettings.from_env({"HONORA_DEVICE": "tpu"})
    assert WorkerSettings.from_env({"HONORA_DEVICE": "cuda:1"}).device == "cuda:1"
    with pytest.raises(SettingsError, match="http"):
        ClientSettings.from_env({"RUNPOD_API_BASE": "api.runpod.ai/v2"})
    with pytest.raises(SettingsError, match="JSON"):
        ClientSettings.from_env({"HONORA_SYNTHESIS_PARAMS": "temperature=0.7"})


def test_secrets_never_show_in_a_repr() -> None:
    client = ClientSettings.from_env({"RUNPOD_API_KEY": "rpa_SECRET123"})
    store = VoiceStoreSettings.from_env({"SUPABASE_KEY": "sb_SECRET456",
                                         "AWS_SECRET_ACCESS_KEY": "aws_SECRET789"})
    assert "SECRET" not in repr(client) + repr(store)
    assert client.api_key is not None and client.api_key.get_secret_value() == "rpa_SECRET123"


def test_aws_default_region_is_the_fallback_region() -> None:
    assert VoiceStoreSettings.from_env({"AWS_DEFAULT_REGION": "eu-west-1"}).aws_region == "eu-west-1"
    assert VoiceStoreSettings.from_env(
        {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "us-east-2"}).aws_region == "us-east-2"


def test_every_variable_is_declared_once() -> None:
    names = [env for group in SETTINGS_GROUPS for env in group.env_names().values()]
    assert len(names) == len(set(names))


def test_readme_settings_table_is_generated_from_the_settings() -> None:
    text = README.read_text()
    match = re.search(r"<!-- settings:begin -->\n(.*?)<!-- settings:end -->", text, re.DOTALL)
    assert match, "README lacks the settings table markers"
    assert match.group(1) == settings_table(), (
        "README's settings table is out of date: regenerate it with "
        "`python -m honora_tts.settings` and paste it between the markers"
    )


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HONORA_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.setenv("HONORA_CACHE_DIR", " ")
    assert cache_dir().parts[-2:] == (".cache", "honora-tts")
    monkeypatch.setenv("HONORA_STREAMING", "not a flag")  # a bad worker setting elsewhere
    assert cache_dir().parts[-2:] == (".cache", "honora-tts")


def test_a_given_mapping_is_read_alone(monkeypatch) -> None:
    monkeypatch.setenv("HONORA_STREAMING", "not a flag")
    monkeypatch.setenv("HONORA_MAX_BATCH", "8")  # retired, in the process environment only
    monkeypatch.setenv("GIT_SHA", "from-the-process")
    settings = WorkerSettings.from_env({"HONORA_CONCURRENCY": "2"})
    assert settings.streaming is False and settings.git_sha is None
    assert settings.concurrency == 2
    with pytest.raises(SettingsError, match="HONORA_MAX_BATCH is retired"):
        WorkerSettings.from_env()
