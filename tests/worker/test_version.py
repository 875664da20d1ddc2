"""The version record every response carries."""

from collections.abc import Iterator

import pytest

from honora_tts import version
from honora_tts.protocol import HANDLER_VERSION
from honora_tts.settings import WorkerSettings


@pytest.fixture(autouse=True)
def restore_the_build() -> Iterator[None]:
    yield
    version.configure_build(WorkerSettings.from_env())


def test_record_names_the_build():
    version.configure_build(WorkerSettings.from_env({
        "GIT_SHA": "0123abcd", "BUILD_TIME": "2026-11-26T12:00:00Z", "RUNPOD_POD_ID": "worker-7",
    }))
    record = version.version_record()
    assert record.handler_version == HANDLER_VERSION
    assert record.git_sha == "0123abcd"
    assert record.build_time == "2026-11-26T12:00:00Z"
    assert record.worker_id == "worker-7"
    assert record.torch_version and record.torch_version.startswith("2.")
    assert record.python_version.startswith("3.")


def test_without_build_args_the_build_time_is_unknown():
    version.configure_build(WorkerSettings.from_env({}))
    assert version.version_record().build_time == version.UNKNOWN


def test_checkout_falls_back_to_git(repo_root):
    version.configure_build(WorkerSettings.from_env({}))
    sha = version.git_sha()
    if (repo_root / ".git").exists():
        assert len(sha) == 40 and all(c in "0123456789abcdef" for c in sha)
    else:
        assert sha == version.UNKNOWN
