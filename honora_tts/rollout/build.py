"""``honora-tts build``: the worker image, as the deployment guide builds it.

``docker build -f Dockerfile.runpod --build-arg GIT_SHA=<commit> --build-arg BUILD_TIME=<UTC>
-t NAME:<commit[:12]> .`` (and ``docker push`` with ``--push``). The tag comes from the commit,
so every build has a unique tag and the workers' reported git sha names it. A dirty working tree
is refused (the image would hold code no commit has) unless ``--allow-dirty``, which tags
``<commit[:12]>-dirty-<UTC time>``. Without ``docker`` on PATH, or without a Docker engine it
can reach (``docker info`` fails), it prints the exact commands and exits 2.

Exit codes: 0 built (and pushed); 1 docker failed; 2 refused or no docker.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from honora_tts.image_reference import InvalidImageReference, parse_image_reference
from honora_tts.rollout.errors import RolloutRefused
from honora_tts.rollout.repository import REPO_ROOT, head_commit, uncommitted_changes

DEFAULT_IMAGE_NAME = "honora-tts-worker"
DOCKERFILE = "Dockerfile.runpod"


@dataclass(frozen=True)
class BuildPlan:
    """The image to build and the commands that build (and push) it."""

    image: str
    git_sha: str
    build_time: str
    commands: list[list[str]]

    def shell(self) -> str:
        return "\n".join(shlex.join(command) for command in self.commands)


def plan_build(name: str = DEFAULT_IMAGE_NAME, *, repo: Path = REPO_ROOT, push: bool = False,
               allow_dirty: bool = False, now: datetime | None = None) -> BuildPlan:
    """The build of ``repo``'s HEAD as ``name:<commit[:12]>``; refuses a dirty tree unless
    ``allow_dirty``."""
    sha = head_commit(repo)
    if sha is None:
        raise RolloutRefused(f"{repo} is not a git checkout with a commit: the image's tag and "
                             "GIT_SHA come from the commit")
    when = (now or datetime.now(UTC)).astimezone(UTC)
    dirty = uncommitted_changes(repo)
    tag = sha[:12]
    if dirty:
        if not allow_dirty:
            raise RolloutRefused(
                f"the working tree has {len(dirty)} uncommitted change(s) (e.g. {dirty[0]}): "
                "an image built now would hold code no commit has. Commit first, or pass "
                "--allow-dirty (tagged <commit>-dirty-<time>)"
            )
        tag = f"{tag}-dirty-{when.strftime('%Y%m%d%H%M%S')}"
    image = f"{name}:{tag}"
    try:
        parse_image_reference(image)
    except InvalidImageReference as exc:
        raise RolloutRefused(f"--image {name!r}: {exc}") from exc
    build_time = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    commands = [[
        "docker", "build", "-f", str(repo / DOCKERFILE), "--build-arg", f"GIT_SHA={sha}",
        "--build-arg", f"BUILD_TIME={build_time}", "-t", image, str(repo),
    ]]
    if push:
        commands.append(["docker", "push", image])
    return BuildPlan(image, sha, build_time, commands)


def docker_missing(docker: str | None) -> str | None:
    """Why Docker cannot build here (no CLI, or no engine it can reach), or None."""
    if docker is None:
        return "no `docker` on PATH"
    try:
        info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=30,
                              check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`docker info` failed ({exc})"
    if info.returncode != 0:
        detail = (info.stderr or info.stdout).strip().splitlines()
        return f"no Docker engine answers `docker info` ({detail[-1] if detail else 'no detail'})"
    return None


def main(argv: list[str] | None = None, *, repo: Path = REPO_ROOT) -> int:
    """``honora-tts build [--image NAME] [--push] [--allow-dirty] [--print]`` (of ``repo``)."""
    parser = argparse.ArgumentParser(
        prog="honora-tts build",
        description="Build the worker image with GIT_SHA and BUILD_TIME, tagged with the commit.",
    )
    parser.add_argument("--image", default=DEFAULT_IMAGE_NAME,
                        help=f"image name, e.g. REGISTRY/honora-tts-worker (default "
                        f"{DEFAULT_IMAGE_NAME}); the tag comes from the commit")
    parser.add_argument("--push", action="store_true", help="docker push the image after")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="build a tree with uncommitted changes (tag <commit>-dirty-<time>)")
    parser.add_argument("--print", dest="print_only", action="store_true",
                        help="print the commands instead of running them")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        plan = plan_build(args.image, repo=repo, push=args.push, allow_dirty=args.allow_dirty)
    except RolloutRefused as exc:
        print(f"honora-tts build: {exc}", file=sys.stderr)
        return 2
    docker = shutil.which("docker")
    missing = docker_missing(docker)
    if args.print_only or missing:
        if missing:
            print(f"honora-tts build: {missing}; run these where Docker is installed:",
                  file=sys.stderr)
        print(plan.shell())
        print(f"then: honora-tts rollout {plan.image}", file=sys.stderr)
        return 2 if missing else 0
    assert docker is not None
    for command in plan.commands:
        print(f"+ {shlex.join(command)}", file=sys.stderr, flush=True)
        if subprocess.run([docker, *command[1:]], check=False).returncode != 0:
            print(f"honora-tts build: {command[1]} failed", file=sys.stderr)
            return 1
    print(plan.image)
    print(f"next: honora-tts rollout {plan.image}", file=sys.stderr)
    return 0
