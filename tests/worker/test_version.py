"""The version record every response carries."""

from honora_tts import version
from honora_tts.protocol import HANDLER_VERSION


def test_record_names_the_build(monkeypatch):
    monkeypatch.setenv("GIT_SHA", "0123abcd")
    monkeypatch.setenv("BUILD_TIME", "2026-11-26T12:00:00Z")
    monkeypatch.setenv("RUNPOD_POD_ID", "worker-7")
    version.git_sha.cache_clear()
    try:
        record = version.version_record()
    finally:
        version.git_sha.cache_clear()
    assert record.handler_version == HANDLER_VERSION
    assert record.git_sha == "0123abcd"
    assert record.build_time == "2026-11-26T12:00:00Z"
    assert record.worker_id == "worker-7"
    assert record.torch_version and record.torch_version.startswith("2.")
    assert record.python_version.startswith("3.")


def test_without_build_args_the_build_time_is_unknown(monkeypatch):
    monkeypatch.delenv("BUILD_TIME", raising=False)
    assert version.version_record().build_time == version.UNKNOWN


def test_checkout_falls_back_to_git(monkeypatch, repo_root):
    monkeypatch.delenv("GIT_SHA", raising=False)
    version.git_sha.cache_clear()
    try:
        sha = version.git_sha()
    finally:
        version.git_sha.cache_clear()
    if (repo_root / ".git").exists():
        assert len(sha) == 40 and all(c in "0123456789abcdef" for c in sha)
    else:
        assert sha == version.UNKNOWN
