"""``honora-tts build``: the guide's docker commands with GIT_SHA, BUILD_TIME and a tag from the
commit; a dirty tree refused unless told; without docker the commands are printed, exit 2."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from honora_tts.image_reference import parse_image_reference
from honora_tts.rollout.build import main, plan_build
from honora_tts.rollout.errors import RolloutRefused


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    (root / "Dockerfile.runpod").write_text("FROM scratch\n")
    _git(root, "add", ".")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    return root


def test_plan_tags_with_the_commit_and_passes_the_build_args(repo):
    sha = _git(repo, "rev-parse", "HEAD")
    when = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
    plan = plan_build("reg.io/team/honora-tts-worker", repo=repo, push=True, now=when)
    assert plan.image == f"reg.io/team/honora-tts-worker:{sha[:12]}"
    assert parse_image_reference(plan.image).tag == sha[:12]
    assert plan.commands == [
        ["docker", "build", "-f", str(repo / "Dockerfile.runpod"), "--build-arg",
         f"GIT_SHA={sha}", "--build-arg", "BUILD_TIME=2026-06-01T12:00:00Z", "-t", plan.image,
         str(repo)],
        ["docker", "push", plan.image],
    ]


def test_dirty_tree_is_refused_unless_told(repo):
    (repo / "new.py").write_text("x = 1\n")
    with pytest.raises(RolloutRefused, match="uncommitted"):
        plan_build(repo=repo)
    plan = plan_build(repo=repo, allow_dirty=True)
    assert "-dirty-" in plan.image


def test_without_docker_it_prints_the_commands_and_exits_2(repo, tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin-without-docker"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git"))
    monkeypatch.setenv("PATH", str(bin_dir))
    assert main(["--image", "reg.io/honora", "--push"], repo=repo) == 2
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert shlex.split(lines[0])[:4] == ["docker", "build", "-f", str(repo / "Dockerfile.runpod")]
    assert lines[1].startswith("docker push reg.io/honora:")
    assert "no `docker` on PATH" in captured.err and "honora-tts rollout" in captured.err
    (repo / "dirty.txt").write_text("x")
    assert main([], repo=repo) == 2
    assert "uncommitted" in capsys.readouterr().err


def _fake_docker(bin_dir: Path, log: Path, info_exit: int) -> None:
    """A stand-in docker CLI: ``info`` exits ``info_exit``; other commands are logged."""
    script = bin_dir / "docker"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = info ]; then echo "Cannot connect to the Docker daemon" >&2; '
        f"exit {info_exit}; fi\n"
        f'echo "$@" >> {shlex.quote(str(log))}\n'
    )
    script.chmod(0o755)


def test_docker_without_an_engine_prints_the_commands(repo, tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git"))
    log = tmp_path / "docker.log"
    _fake_docker(bin_dir, log, info_exit=1)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert main([], repo=repo) == 2
    assert "no Docker engine answers" in capsys.readouterr().err
    assert not log.exists()

    _fake_docker(bin_dir, log, info_exit=0)
    assert main(["--image", "reg.io/honora", "--push"], repo=repo) == 0
    sha = _git(repo, "rev-parse", "HEAD")
    build, push = log.read_text().splitlines()
    assert build.startswith(f"build -f {repo / 'Dockerfile.runpod'} --build-arg GIT_SHA={sha}")
    assert push == f"push reg.io/honora:{sha[:12]}"
    assert capsys.readouterr().out.strip() == f"reg.io/honora:{sha[:12]}"
