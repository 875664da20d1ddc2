"""``honora-tts health``, ``honora-tts say`` and ``honora-tts census``.

Exit codes: 0 success; 1 the endpoint or a job failed (unhealthy, job failed, stale or mixed
builds); 2 usage or configuration errors (bad arguments, missing settings, refused API key).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from honora_tts.audio import OUTPUT_FORMATS
from honora_tts.client._exceptions import (
    AuthenticationError,
    ConfigurationError,
    HonoraClientError,
    InvalidRequest,
)
from honora_tts.client.endpoint import EndpointClient
from honora_tts.client.local_files import output_format, resolve_voice_file, voices_dir
from honora_tts.client.results import HealthReport, SectionRequest, SynthesisResult
from honora_tts.log_safety import configure_logging
from honora_tts.settings import ClientSettings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class _UsageError(Exception):
    """Arguments that parse but make no sense together."""


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"honora-tts {prog}", description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request")
    parser.add_argument("--endpoint", default=None, metavar="ID",
                        help="a RunPod endpoint id, or 'localpod' for a local endpoint "
                        "(default: $RUNPOD_ENDPOINT_ID)")
    return parser


def _run(
    name: str,
    parser: argparse.ArgumentParser,
    argv: list[str],
    body: Callable[[argparse.Namespace, EndpointClient], int],
    client: EndpointClient | None,
) -> int:
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    configure_logging(logging.INFO if args.verbose else logging.WARNING)
    owned = client is None
    try:
        if client is None:
            client = EndpointClient.from_env(endpoint=args.endpoint)
        return body(args, client)
    except _UsageError as exc:
        print(f"honora-tts {name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ConfigurationError, AuthenticationError, InvalidRequest) as exc:
        print(f"honora-tts {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HonoraClientError as exc:
        print(f"honora-tts {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"honora-tts {name}: interrupted", file=sys.stderr)
        return 130
    finally:
        if owned and client is not None:
            client.close()


# ------------------------------------------------------------------------------ health


def health_main(argv: list[str], client: EndpointClient | None = None) -> int:
    """``honora-tts health [--json]``: one health job plus the endpoint's worker counts."""
    parser = _parser("health", "Run one health job: which build answers, is its model loaded.")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--deadline", type=float, default=None, metavar="S",
                        help="give up (and cancel) after S seconds (default 60)")
    return _run("health", parser, argv, _health, client)


def _health(args: argparse.Namespace, client: EndpointClient) -> int:
    report = client.health_job(deadline_s=args.deadline)
    endpoint: dict[str, Any] | None = None
    try:
        counts = client.health()
        endpoint = {"jobs": counts.jobs, "workers": counts.workers}
    except HonoraClientError as exc:
        endpoint = {"error": str(exc)}
    healthy = report.status == "healthy"
    if args.json:
        print(json.dumps({**report.to_dict(), "endpoint": endpoint}, indent=2))
    else:
        print(_describe_health(report))
        if endpoint is not None:
            print(f"endpoint {client.endpoint_id}: {_counts(endpoint)}")
    return EXIT_OK if healthy else EXIT_FAILED


def _describe_health(report: HealthReport) -> str:
    v = report.version
    model = report.health.get("model_loaded")
    return (
        f"{report.status}: worker {report.worker_id or '?'} runs handler v{v.handler_version}, "
        f"git {v.git_sha[:12]} built {v.build_time}, model {v.model_name or '?'} on "
        f"{v.device or '?'}{'' if model in (None, True) else ' (model NOT loaded)'}; "
        f"answered in {report.timings.client_ms:.0f} ms"
    )


def _counts(endpoint: dict[str, Any]) -> str:
    if "error" in endpoint:
        return f"GET /health failed: {endpoint['error']}"
    return f"workers {endpoint['workers'] or '{}'}, jobs {endpoint['jobs'] or '{}'}"


# --------------------------------------------------------------------------------- say


def say_main(argv: list[str], client: EndpointClient | None = None) -> int:
    """``honora-tts say TEXT [--voice FILE] [--language en] [--format wav] -o OUT`` or
    ``honora-tts say --sections-file SECTIONS.json -o DIR``."""
    parser = _parser("say", "Synthesize TEXT (or a JSON list of sections) into audio files.")
    parser.add_argument("text", nargs="?", help="the text to speak")
    parser.add_argument("--voice", default="",
                        help="voice file: a path, or a name in $HONORA_VOICES_DIR "
                        "(default: the worker's default voice)")
    parser.add_argument("--language", default="en", help="language code (default en)")
    parser.add_argument("--format", choices=tuple(OUTPUT_FORMATS), default=None,
                        help="audio format (default: from OUT's suffix, else wav)")
    parser.add_argument("-o", "--out", required=True,
                        help="output file (a directory with --sections-file)")
    parser.add_argument("--sections-file", type=Path, default=None, metavar="JSON",
                        help="a JSON list of {id, text, voice?, language?}")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="parallel jobs for --sections-file (default 4)")
    parser.add_argument("--sections-per-job", type=int, default=1,
                        help="sections per job for --sections-file (default 1)")
    parser.add_argument("--deadline", type=float, default=None, metavar="S",
                        help="give up on a job (and cancel it) after S seconds (default 300)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return _run("say", parser, argv, _say, client)


def _say(args: argparse.Namespace, client: EndpointClient) -> int:
    if (args.text is None) == (args.sections_file is None):
        raise _UsageError("give either TEXT or --sections-file")
    voice = _voice_path(args.voice)
    if args.sections_file is not None:
        return _say_sections(args, client, voice)
    try:
        fmt = args.format or output_format(args.out)
    except ValueError as exc:
        raise _UsageError(str(exc)) from exc
    result = client.synthesize(
        args.text, voice, args.language, format=fmt, deadline_s=args.deadline
    )
    path = result.save(args.out)
    if args.json:
        print(json.dumps({"path": str(path), **result.to_dict()}, indent=2))
    else:
        print(_describe_result(path, result))
    return EXIT_OK


def _say_sections(args: argparse.Namespace, client: EndpointClient, voice: Path | None) -> int:
    try:
        raw = json.loads(args.sections_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _UsageError(f"cannot read {args.sections_file}: {exc}") from exc
    if isinstance(raw, dict):
        raw = raw.get("sections")
    if not isinstance(raw, list) or not raw:
        raise _UsageError(f"{args.sections_file} must hold a non-empty list of sections")
    try:
        sections = [SectionRequest.coerce(item, i) for i, item in enumerate(raw)]
    except (TypeError, ValueError) as exc:
        raise _UsageError(f"{args.sections_file}: {exc}") from exc
    sections = [
        SectionRequest(s.id, s.text, _voice_path(s.voice) if isinstance(s.voice, str) and
                       not s.voice.startswith(("http://", "https://")) else s.voice, s.language)
        for s in sections
    ]
    batch = client.synthesize_batch(
        sections, voice=voice, language=args.language, format=args.format or "wav",
        sections_per_job=args.sections_per_job, concurrency=args.concurrency,
        deadline_s=args.deadline, progress=not args.json,
    )
    out_dir = Path(args.out)
    batch.save(out_dir)
    if args.json:
        print(json.dumps({
            "ok": batch.ok,
            "client_ms": round(batch.client_ms, 1),
            "sections": [
                {"id": o.id, **(o.result.to_dict() if o.result else {}),
                 "error": None if o.ok else f"{type(o.error).__name__}: {o.error}"}
                for o in batch
            ],
        }, indent=2))
    else:
        for outcome in batch:
            if outcome.result is not None:
                name = f"{outcome.id}.{outcome.result.format}"
                print(_describe_result(out_dir / name, outcome.result))
            else:
                print(f"FAILED {outcome.id}: {type(outcome.error).__name__}: {outcome.error}",
                      file=sys.stderr)
        print(f"{len(batch.succeeded)}/{len(batch)} sections in {batch.client_ms / 1000:.1f} s")
    return EXIT_OK if batch.ok else EXIT_FAILED


def _voice_path(voice: str | None) -> Path | None:
    if not voice:
        return None
    direct = Path(voice).expanduser()
    if direct.is_file():
        return direct
    try:
        return resolve_voice_file(voice, voices_dir(ClientSettings.from_env()))
    except FileNotFoundError as exc:
        raise _UsageError(str(exc)) from exc


def _describe_result(path: Path, result: SynthesisResult) -> str:
    t = result.timings
    return (
        f"wrote {path}: {result.duration_s:.2f} s {result.format} {result.sample_rate} Hz "
        f"from worker {result.worker_id or '?'} (handler v{result.version.handler_version}, "
        f"git {result.version.git_sha[:12]}) in {t.client_ms:.0f} ms "
        f"[queue {t.delay_ms} ms, execution {t.execution_ms} ms; request {result.request_id}, "
        f"job {result.job_id}]"
    )


# ------------------------------------------------------------------------------ census


def census_main(argv: list[str], client: EndpointClient | None = None) -> int:
    """``honora-tts census [--probes N] [--min-handler-version N] [--json]``: exit 1 when a
    stale build answers, more than one build answers, a probe gets no answer, or a ready worker
    the platform lists (management API ``/workers``, where reachable) never answers."""
    parser = _parser("census", "Send N health jobs at once and report which builds answer.")
    parser.add_argument("--probes", type=int, default=8, help="health jobs to send (default 8)")
    parser.add_argument("--min-handler-version", type=int, default=None, metavar="N",
                        help="handler versions below N count as stale (default: this client's)")
    parser.add_argument("--deadline", type=float, default=None, metavar="S",
                        help="give up on a probe (and cancel it) after S seconds (default 60)")
    parser.add_argument("--management-api-base", default=None, metavar="URL",
                        help="management API base (default $RUNPOD_MANAGEMENT_API_BASE, else "
                        "localpod's or RunPod's)")
    parser.add_argument("--no-platform", action="store_true",
                        help="do not ask the management API which workers exist")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return _run("census", parser, argv, _census, client)


def _census(args: argparse.Namespace, client: EndpointClient) -> int:
    if args.probes < 1:
        raise _UsageError("--probes must be at least 1")
    from honora_tts.client.platform import census_with_platform, platform_workers

    platform = None if args.no_platform else platform_workers(
        client, args.management_api_base or ClientSettings.from_env().management_api_base)
    census = census_with_platform(
        client, args.probes, platform=platform, min_handler_version=args.min_handler_version,
        deadline_s=args.deadline,
    )
    if args.json:
        print(json.dumps(census.to_dict(), indent=2))
    else:
        print(census.summary())
    return EXIT_OK if census.ok else EXIT_FAILED
