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
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from honora_tts.log_safety import configure_logging
from honora_tts.protocol import HANDLER_VERSION
from honora_tts.settings import ClientSettings

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
    parser.add_argument("--stress-sample", type=int, default=3,
                        help="stress outputs judged by the speaks check")
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


def expected_sha(value: str | None, settings: ClientSettings | None = None) -> str:
    """The commit to check against: the flag, $EXPECTED_GIT_SHA, else this checkout's HEAD."""
    if value is not None:
        return value.strip()
    settings = settings or ClientSettings.from_env()
    if settings.expected_git_sha and settings.expected_git_sha.strip():
        return settings.expected_git_sha.strip()
    from honora_tts.version import UNKNOWN, git_sha

    head = git_sha()
    return "" if head == UNKNOWN else head


@contextmanager
def chosen_endpoint(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """The endpoint to verify: parameters for the notebook and the kernel's environment."""
    settings = ClientSettings.from_env()
    endpoint_id = (args.endpoint_id or settings.endpoint_id or "").strip()
    if endpoint_id:
        api_key = settings.api_key.get_secret_value().strip() if settings.api_key else ""
        if not api_key:
            raise SystemExit("honora-tts verify: RUNPOD_ENDPOINT_ID is set but RUNPOD_API_KEY "
                             "is not; export the key (RunPod console > Settings > API Keys).")
        api_base = (args.api_base or settings.api_base).strip()
        management_key = (settings.management_api_key.get_secret_value().strip()
                          if settings.management_api_key else "")
        yield {"endpoint": endpoint_id, "api_base": api_base,
               "env": {"RUNPOD_API_KEY": api_key,
                       "RUNPOD_MANAGEMENT_API_KEY": management_key or None},
               "local": False}
        return
    try:
        from honora_tts.localpod import LocalPod
    except ImportError as exc:
        raise SystemExit(
            "honora-tts verify: no RUNPOD_ENDPOINT_ID is set, and verifying a localpod needs "
            f"the localpod extra, which this install lacks ({exc}): pip install "
            "'honora-tts[localpod,qa]'. Or set RUNPOD_ENDPOINT_ID and RUNPOD_API_KEY."
        ) from exc
    print(NOISE_BANNER, file=sys.stderr, flush=True)
    print(f"starting localpod: {args.workers} worker(s) + {args.stale_workers} stale, tiny "
          "model (loading takes a minute on a CPU) ...", file=sys.stderr, flush=True)
    pod = LocalPod(workers=args.workers, model="tiny", stale_workers=args.stale_workers)
    pod.start()
    try:
        yield {"endpoint": pod.endpoint_id, "api_base": pod.base_url,
               "env": {"RUNPOD_API_KEY": pod.api_key, "RUNPOD_ENDPOINT_ID": None,
                       "RUNPOD_API_BASE": None,
                       "RUNPOD_MANAGEMENT_API_KEY": pod.management_api_key},
               "local": True}
    finally:
        pod.stop()


def run_verification(
    parameters: dict[str, Any],
    out: Path,
    *,
    env: dict[str, str | None],
    execution_timeout: int = 600,
    log_output: bool = True,
) -> tuple[dict[str, Any] | None, str | None]:
    """Run notebook 01 with ``parameters`` (its ``artifacts_dir`` is set to ``out``); returns
    (the summary it wrote, None), or (None, why it did not finish). ``env`` goes to the kernel
    (the API key travels there, never in the parameters)."""
    from honora_tts.qa.notebook_runner import NotebookFailed, export_html, run_notebook

    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "summary.json"
    summary_path.unlink(missing_ok=True)
    executed = out / f"{NOTEBOOK}.ipynb"
    failure: str | None = None
    try:
        run_notebook(NOTEBOOK, executed, {**parameters, "artifacts_dir": str(out)},
                     cwd=Path.cwd(), execution_timeout=execution_timeout, env=env,
                     log_output=log_output)
    except NotebookFailed as exc:
        failure = str(exc)
    if executed.exists():
        html = export_html(executed, out / f"{NOTEBOOK}.html")
        print(f"report: {html}", file=sys.stderr)
    if failure is not None or not summary_path.exists():
        return None, failure or "no summary.json was written"
    return json.loads(summary_path.read_text(encoding="utf-8")), None


def main(argv: list[str] | None = None) -> int:
    """Run the verification; 0 on PASS, 1 on FAIL, 2 when it could not run."""
    args = build_parser().parse_args(argv)
    missing = _missing_notebook_tools()
    if missing:
        print(f"honora-tts verify: runs notebook 01 with {', '.join(missing)}, which this "
              "install lacks: pip install 'honora-tts[qa]'", file=sys.stderr)
        return 2
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not args.quiet:
        configure_logging(logging.WARNING, "%(message)s")
        logging.getLogger("papermill").setLevel(logging.INFO)
    started = time.perf_counter()
    with chosen_endpoint(args) as target:
        max_tokens = args.max_new_tokens
        if max_tokens is None:
            max_tokens = LOCALPOD_MAX_NEW_TOKENS if target["local"] else 0
        parameters = {
            "endpoint": target["endpoint"], "api_base": target["api_base"],
            "expected_git_sha": expected_sha(args.expected_git_sha),
            "min_handler_version": args.min_handler_version, "probes": args.probes,
            "parallel": args.parallel, "stress_sample": args.stress_sample, "voice": args.voice,
            "max_new_tokens": max_tokens,
        }
        print(f"running {NOTEBOOK} against {target['endpoint']} "
              f"({target['api_base'] or 'RunPod'}) ...", file=sys.stderr, flush=True)
        summary, failure = run_verification(
            parameters, out, env=target["env"], execution_timeout=args.execution_timeout,
            log_output=not args.quiet,
        )
    elapsed = time.perf_counter() - started
    if summary is None:
        print(f"VERDICT: FAIL: the verification notebook did not finish: {failure}", flush=True)
        return 1
    print(f"summary: {out / 'summary.json'} ({elapsed:.0f} s)", file=sys.stderr)
    print(summary["headline"], flush=True)
    return 0 if summary.get("passed") else 1


def _missing_notebook_tools() -> list[str]:
    """The notebook packages (the ``[qa]`` extra) this install lacks."""
    import importlib.util

    missing = []
    for name in ("papermill", "nbformat", "nbconvert", "ipykernel"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


if __name__ == "__main__":
    sys.exit(main())
