"""Facts of the git checkout a rollout runs from: which commit a tag names, whether the working
tree has uncommitted changes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from honora_tts.checkout import ROOT as REPO_ROOT


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], check=False, capture_output=True, text=True, timeout=10,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def resolve_commit(ref: str, repo: Path = REPO_ROOT) -> str | None:
    """The full sha of the commit ``ref`` names in ``repo`` (a sha prefix of at least 7
    characters, or a git tag), else None."""
    if not ref or ref.startswith("-"):
        return None
    out = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return out.strip() if out else None


def head_commit(repo: Path = REPO_ROOT) -> str | None:
    out = _git(repo, "rev-parse", "HEAD")
    return out.strip() if out else None


def uncommitted_changes(repo: Path = REPO_ROOT) -> list[str]:
    """Paths with uncommitted changes (untracked files included); empty when clean or when
    ``repo`` is not a git checkout."""
    out = _git(repo, "status", "--porcelain")
    return [line[3:] for line in out.splitlines() if line.strip()] if out else []
