"""``honora-tts verify`` (``make verify``): deploy verification as one command.

Chooses the endpoint (``RUNPOD_ENDPOINT_ID`` + ``RUNPOD_API_KEY`` when set, else a localpod it
starts with the tiny random-weights model, and says loudly that its audio is noise), runs
notebook 01 with papermill, writes the executed notebook, an HTML report and ``summary.json``
under ``artifacts/verify/``, prints the verdict and exits 0 on PASS, 1 on FAIL (2 when it could
not run at all).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from honora_tts.log_safety import configure_logging
from honora_tts.protocol import HANDLER_VERSION

NOTEBOOK = "01_deploy_verification"
DEFAULT_OUT = Path("artifacts/verify")
#: On localpod the tiny model never emits its stop token: bound the clips (about 1 s of audio).
LOCALPOD_MAX_NEW_TOKENS = 24

NOISE_BANNER = """
################################################################################
#  NO RUNPOD ENDPOINT CONFIGURED (RUNPOD_ENDPOINT_ID / RUNPOD_API_KEY unset).   #
#  Verifying a LOCALPOD started here with the TINY RANDOM-WEIGHTS model.         #
#  ITS AUDIO IS NOISE, NOT SPEECH: this checks the pipeline, not the voice.      #
#  Set RUNPOD_ENDPOINT_ID and RUNPOD_API_KEY to verify a real deployment.        #
################################################################################
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="honora-tts verify",
        description="Deploy verification: runs notebooks/01_deploy_verification.ipynb and "
        "prints one verdict. Verifies $RUNPOD_ENDPOINT_ID when it and $RUNPOD_API_KEY are "
        "set, else a localpod started for the run (tiny model: noise).",
    )
    parser.add_argument("--endpoint-id", default=None,
                        help="RunPod endpoint id (default: $RUNPOD_ENDPOINT_ID)")
    parser.add_argument("--api-base", default=None,
                        help="API base URL (default: $RUNPOD_API_BASE or RunPod's)")
    parser.add_argument("--expected-git-sha", default=None,
                        help="commit the workers must run (default: $EXPECTED_GIT_SHA, else this "
                        "checkout's HEAD; '' to skip the check)")
    parser.add_argument("--min-handler-version", type=int, default=HANDLER_VERSION)
    parser.add_argument("--probes", type=int, default=6, help="health jobs per census round")
    parser.add_argument("--parallel", type=int, default=10, help="stress-test requests")
    parser.add_argument("--voice", default="", help="reference voice file (default: synthetic)")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help=f"bound on generated audio tokens (localpod default "
                        f"{LOCALPOD_MAX_NEW_TOKENS}, RunPod default: none)")
    parser.add_argument("--workers", type=int, default=2, help="localpod: current workers")
    parser.add_argument("--stale-workers", type=int, default=0,
                        help="localpod: add workers running the old batch-only image (to see "
                        "a FAIL)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    parser.add_argument("--execution-timeout", type=int, default=600,
                        help="seconds one notebook cell may run")
    parser.add_argument("--quiet", action="store_true", help="do not echo notebook output")
    return parser


def expected_sha(value: str | None) -> str:
    """The commit to check against: the flag, $EXPECTED_GIT_SHA, else this checkout's HEAD."""
    if value is not None:
        return value.strip()
    from_env = os.environ.get("EXPECTED_GIT_SHA", "").strip()
    if from_env:
        return from_env
    from honora_tts.version import UNKNOWN, git_sha

    head = git_sha()
    return "" if head == UNKNOWN else head


@contextmanager
def chosen_endpoint(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """The endpoint to verify: parameters for the notebook and the kernel's environment."""
    endpoint_id = (args.endpoint_id or os.environ.get("RUNPOD_ENDPOINT_ID") or "").strip()
    if endpoint_id:
        api_key = os.environ.get("RUNPOD_API_KEY", "").strip()
        if not api_key:
            raise SystemExit("honora-tts verify: RUNPOD_ENDPOINT_ID is set but RUNPOD_API_KEY "
                             "is not; export the key (RunPod console > Settings > API Keys).")
        api_base = (args.api_base or os.environ.get("RUNPOD_API_BASE") or "").strip()
        yield {"endpoint": endpoint_id, "api_base": api_base, "env": {"RUNPOD_API_KEY": api_key},
               "local": False}
        return
    from honora_tts.localpod import LocalPod

    print(NOISE_BANNER, file=sys.stderr, flush=True)
    print(f"starting localpod: {args.workers} worker(s) + {args.stale_workers} stale, tiny "
          "model (loading takes a minute on a CPU) ...", file=sys.stderr, flush=True)
    pod = LocalPod(workers=args.workers, model="tiny", stale_workers=args.stale_workers)
    pod.start()
    try:
        yield {"endpoint": pod.endpoint_id, "api_base": pod.base_url,
               "env": {"RUNPOD_API_KEY": pod.api_key, "RUNPOD_ENDPOINT_ID": None,
                       "RUNPOD_API_BASE": None},
               "local": True}
    finally:
        pod.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the verification; 0 on PASS, 1 on FAIL, 2 when it could not run."""
    from honora_tts.qa.notebook_runner import NotebookFailed, export_html, run_notebook

    args = build_parser().parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "summary.json"
    summary_path.unlink(missing_ok=True)
    if not args.quiet:
        configure_logging(logging.WARNING, "%(message)s")
        logging.getLogger("papermill").setLevel(logging.INFO)
    executed = out / f"{NOTEBOOK}.ipynb"
    started = time.perf_counter()
    failure: str | None = None
    with chosen_endpoint(args) as target:
        max_tokens = args.max_new_tokens
        if max_tokens is None:
            max_tokens = LOCALPOD_MAX_NEW_TOKENS if target["local"] else 0
        parameters = {
            "endpoint": target["endpoint"], "api_base": target["api_base"],
            "expected_git_sha": expected_sha(args.expected_git_sha),
            "min_handler_version": args.min_handler_version, "probes": args.probes,
            "parallel": args.parallel, "voice": args.voice, "max_new_tokens": max_tokens,
            "artifacts_dir": str(out),
        }
        print(f"running {NOTEBOOK} against {target['endpoint']} "
              f"({target['api_base'] or 'RunPod'}) ...", file=sys.stderr, flush=True)
        try:
            run_notebook(NOTEBOOK, executed, parameters, cwd=Path.cwd(),
                         execution_timeout=args.execution_timeout, env=target["env"],
                         log_output=not args.quiet)
        except NotebookFailed as exc:
            failure = str(exc)
    if executed.exists():
        html = export_html(executed, out / f"{NOTEBOOK}.html")
        print(f"report: {html}", file=sys.stderr)
    elapsed = time.perf_counter() - started
    if failure is not None or not summary_path.exists():
        print(f"VERDICT: FAIL: the verification notebook did not finish: "
              f"{failure or 'no summary.json was written'}", flush=True)
        return 1
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    print(f"summary: {summary_path} ({elapsed:.0f} s)", file=sys.stderr)
    print(summary["headline"], flush=True)
    return 0 if summary.get("passed") else 1


if __name__ == "__main__":
    sys.exit(main())
