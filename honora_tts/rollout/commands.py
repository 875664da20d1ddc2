"""``honora-tts rollout IMAGE:TAG`` and ``honora-tts rollback``.

The endpoint: ``--endpoint-id`` or ``RUNPOD_ENDPOINT_ID`` with ``RUNPOD_API_KEY``; the job API
at ``--api-base`` / ``RUNPOD_API_BASE`` (default RunPod's), the management API at
``--management-api-base`` / ``RUNPOD_MANAGEMENT_API_BASE`` (default ``https://api.runpod.io/v2``)
with ``RUNPOD_MANAGEMENT_API_KEY`` (default: ``RUNPOD_API_KEY``, when one key serves both).
Without an endpoint id, a running localpod (``honora-tts localpod``) is used, with its two keys.

Exit codes: 0 every worker runs the new build and the verification passed (or was skipped);
1 the watch timed out (stale workers named), the verification failed, or the endpoint failed;
2 refused before anything changed (malformed image, ``:latest``, reused tag, unknown endpoint,
wrong key, missing settings).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from honora_tts.client import (
    AuthenticationError,
    ConfigurationError,
    HonoraClientError,
    InvalidRequest,
    NotFound,
)
from honora_tts.client.management import (
    ENV_MANAGEMENT_API_BASE,
    ChangeRefused,
    ManagementClient,
)
from honora_tts.image_reference import InvalidImageReference
from honora_tts.rollout.engine import (
    DEFAULT_OUT,
    RolloutResult,
    WatchOptions,
    notebook_verification,
    rollback,
    rollout,
)
from honora_tts.rollout.errors import (
    RolloutError,
    RolloutRefused,
    RolloutTimedOut,
)
from honora_tts.settings import DEFAULT_MANAGEMENT_API_BASE, ClientSettings, SettingsError

_ENV = ClientSettings.env_names()

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2


@dataclass(frozen=True)
class Target:
    """Where the endpoint is and how to reach both of its APIs."""

    endpoint_id: str
    api_key: str
    job_api_base: str
    management_api_base: str
    source: str
    #: The management API's key (the job API's when the two share one).
    management_api_key: str = ""

    @property
    def management_key(self) -> str:
        return self.management_api_key or self.api_key


def resolve_target(args: argparse.Namespace, env: Mapping[str, str] | None) -> Target:
    """The endpoint from the flags, else the environment (``env``, default the process's),
    else a running localpod."""
    try:
        settings = ClientSettings.from_env(env)
    except SettingsError as exc:
        raise ConfigurationError(str(exc)) from None
    endpoint_id = (args.endpoint_id or settings.endpoint_id or "").strip()
    if endpoint_id:
        api_key = settings.api_key.get_secret_value().strip() if settings.api_key else ""
        if not api_key:
            raise ConfigurationError(
                f"{_ENV['api_key']} is not set: export a RunPod API key with access to Serverless "
                "(RunPod console > Settings > API Keys)"
            )
        management_key = (settings.management_api_key.get_secret_value().strip()
                          if settings.management_api_key else "")
        return Target(
            endpoint_id, api_key,
            (args.api_base or settings.api_base).rstrip("/"),
            (args.management_api_base or settings.management_api_base
             or DEFAULT_MANAGEMENT_API_BASE).rstrip("/"),
            "environment", management_key,
        )
    from honora_tts.localpod.discovery import find_running

    running = find_running()
    if not running or not running.get("management_base"):
        raise ConfigurationError(
            f"no endpoint: pass --endpoint-id or set {_ENV['endpoint_id']} and {_ENV['api_key']} "
            "(or start `honora-tts localpod --image NAME:TAG=ENTRY ...` to rehearse locally)"
        )
    return Target(running["endpoint_id"], running["api_key"], running["base_url"],
                  args.management_api_base or running["management_base"], "localpod",
                  running.get("management_api_key") or "")


def _common(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--endpoint-id", default=None, help=f"endpoint id (default ${_ENV['endpoint_id']})")
    add("--api-base", default=None, help=f"job API base (default ${_ENV['api_base']} or RunPod's)")
    add("--management-api-base", default=None,
        help=f"management API base (default ${ENV_MANAGEMENT_API_BASE} or "
        f"{DEFAULT_MANAGEMENT_API_BASE})")
    add("--expected-git-sha", default=None,
        help="the git sha every worker must report (default: the tag, when it is a commit of "
        "this repository)")
    add("--strict", action="store_true",
        help="scale to zero first, change the image, scale back: no request is answered by an "
        "old worker after the change")
    add("--timeout", type=float, default=900.0, metavar="S",
        help="give up watching after S seconds (default 900)")
    add("--poll", type=float, default=2.0, metavar="S", help="seconds between looks (default 2)")
    add("--probes", type=int, default=None,
        help="census health jobs per look (default: two per ready worker)")
    add("--probe-deadline", type=float, default=30.0, metavar="S",
        help="give up on a census probe after S seconds (default 30)")
    add("--traffic", type=int, default=0, metavar="N",
        help="send a steady load of synthesis requests from N senders during the rollout and "
        "count what old and new workers answered (default 0: none)")
    add("--traffic-text", default="Hello.", help="text of the steady load's requests")
    add("--max-new-tokens", type=int, default=0,
        help="bound on audio tokens for the load and the verification (localpod's tiny model "
        "needs one; 0: none)")
    add("--out", type=Path, default=DEFAULT_OUT, help=f"report folder (default {DEFAULT_OUT})")
    add("--no-progress", action="store_true", help="no progress bar")
    add("--json", action="store_true", help="print the report's JSON summary")
    add("-v", "--verbose", action="store_true", help="log each request")


def _verification_args(parser: argparse.ArgumentParser, default_on: bool) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--verify", dest="verify", action="store_true", default=default_on,
                       help="run deploy verification (notebook 01) after the watch"
                       + (" (default)" if default_on else ""))
    group.add_argument("--no-verify", dest="verify", action="store_false",
                       help="skip the deploy verification" + ("" if default_on else
                                                               " (default)"))
    parser.add_argument("--verify-parallel", type=int, default=4,
                        help="verification stress-test requests (default 4)")
    parser.add_argument("--verify-probes", type=int, default=4,
                        help="verification census probes (default 4)")


def _options(args: argparse.Namespace) -> WatchOptions:
    return WatchOptions(
        strict=args.strict, timeout_s=args.timeout, poll_s=args.poll, probes=args.probes,
        probe_deadline_s=args.probe_deadline, progress=not args.no_progress,
    )


def _run(name: str, parser: argparse.ArgumentParser, argv: list[str] | None,
         env: Mapping[str, str] | None) -> int:
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    management = jobs = None
    try:
        target = resolve_target(args, env)
        from honora_tts.client import EndpointClient

        management = ManagementClient(target.management_key, target.management_api_base)
        jobs = EndpointClient(target.endpoint_id, target.api_key, target.job_api_base,
                              management_api_key=target.management_key)
        result = _execute(name, args, target, management, jobs)
    except (RolloutRefused, InvalidImageReference, ConfigurationError, AuthenticationError,
            NotFound, InvalidRequest, ChangeRefused) as exc:
        print(f"honora-tts {name}: {type(exc).__name__}: {exc}\nnothing was changed on the "
              "endpoint.", file=sys.stderr)
        return EXIT_REFUSED
    except RolloutTimedOut as exc:
        print(f"honora-tts {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (RolloutError, HonoraClientError) as exc:
        print(f"honora-tts {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"honora-tts {name}: interrupted", file=sys.stderr)
        return 130
    finally:
        for client in (management, jobs):
            if client is not None:
                client.close()
    return _report(name, args, result)


def _execute(name: str, args: argparse.Namespace, target: Target,
             management: ManagementClient, jobs: Any) -> RolloutResult:
    params = {"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else None
    traffic = None
    if args.traffic > 0:
        from honora_tts.rollout.traffic import SteadyLoad

        traffic = SteadyLoad(jobs, text=args.traffic_text, concurrency=args.traffic,
                             params=params)
    verification = None
    if args.verify:
        verification = notebook_verification(
            target.endpoint_id, target.job_api_base, target.api_key,
            args.out / f"{target.endpoint_id}-verify", probes=args.verify_probes,
            management_api_key=target.management_key,
            parallel=args.verify_parallel, max_new_tokens=args.max_new_tokens,
        )
    common: dict[str, Any] = {
        "expected_git_sha": args.expected_git_sha, "options": _options(args),
        "verification": verification, "traffic": traffic, "out_root": args.out,
    }
    if name == "rollout":
        return rollout(management, jobs, target.endpoint_id, args.image, **common)
    return rollback(management, jobs, target.endpoint_id, to_image=args.to_image, **common)


def _report(name: str, args: argparse.Namespace, result: RolloutResult) -> int:
    record = result.record
    counts = record.request_counts()
    if args.json:
        data = result.record.to_dict()
        data.pop("request_log")
        print(json.dumps({**data, "report": {k: str(v) for k, v in result.files.items()}},
                         indent=2, default=str))
    else:
        last = record.samples[-1] if record.samples else None
        workers = ", ".join(last.confirmed) if last else "none"
        print(f"{name}: endpoint {record.endpoint_id} now runs {record.image} (was "
              f"{record.previous_image}); release {(record.release or {}).get('id')} "
              f"version {record.endpoint_version_before} -> {record.endpoint_version_after}")
        print(f"workers confirmed by platform and census: {workers}")
        if counts["total"]:
            print(f"requests: {counts['total']} ({counts['outcomes']}); answered by old workers "
                  f"during the overlap: {counts['old_during_overlap']}, by new: "
                  f"{counts['new_during_overlap']}")
        if record.verification is not None:
            print(record.verification.get("headline"))
        print(f"report: {result.files.get('json')} and {result.files.get('plot')}")
    return EXIT_OK if result.ok else EXIT_FAILED


def rollout_main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """``honora-tts rollout IMAGE:TAG [--strict] [--expected-git-sha SHA] ...``."""
    parser = argparse.ArgumentParser(
        prog="honora-tts rollout",
        description="Change the endpoint's image and watch until every worker runs the new "
        "build (platform and census agree), then verify.",
    )
    parser.add_argument("image", help="the image to run, NAME:TAG with a unique tag")
    _common(parser)
    _verification_args(parser, default_on=True)
    return _run("rollout", parser, argv, env)


def rollback_main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """``honora-tts rollback [--to-image NAME:TAG]``: the image the last rollout replaced."""
    parser = argparse.ArgumentParser(
        prog="honora-tts rollback",
        description="Put back the image the last rollout replaced (or --to-image), watched the "
        "same way.",
    )
    parser.add_argument("--to-image", default=None,
                        help="the image to go back to (default: what the last rollout replaced, "
                        "from the report folder, else the release history)")
    _common(parser)
    _verification_args(parser, default_on=False)
    return _run("rollback", parser, argv, env)
