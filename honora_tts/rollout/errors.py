"""Errors of a rollout. Each message says what happened and what to do. (Errors of the
management API itself are :mod:`honora_tts.client.management`'s.)"""

from __future__ import annotations


class RolloutError(Exception):
    """Base of the rollout's own errors."""


class RolloutRefused(RolloutError):
    """The rollout would not be safe or checkable (a reused tag, no expected git sha, nothing
    to roll back to); nothing was changed on the endpoint."""


class RolloutTimedOut(RolloutError):
    """Not every worker ran the new build before the deadline. ``workers`` maps each worker that
    was not confirmed to what was wrong with it."""

    def __init__(self, message: str, *, workers: dict[str, str]) -> None:
        self.workers = workers
        super().__init__(message)
