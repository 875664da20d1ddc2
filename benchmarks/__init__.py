"""``python -m benchmarks [NAME ...]``: benchmarks that measure and print, never pass or fail.

Each benchmark prints a table (figure, value, spread, target, met?) of medians, spread and
ratios measured side by side in the same run, and writes ``artifacts/bench/<name>.json`` with
the raw samples and the machine's facts (cores, torch, device, load average). Several names (or
none: every benchmark) run one after another, each in its own process so that one model,
environment or crash cannot leak into the next; ``artifacts/bench/summary.md`` then holds the
table of all figures. Method and latest figures: ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path

from benchmarks.options import BenchOptions
from benchmarks.report import DEFAULT_OUT, BenchResult, fmt, table, verdict_text, write_json

#: name -> (module, title)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "p1": ("client_overhead", "client overhead: honora client vs runpod SDK vs in process"),
    "p2": ("voice_reuse", "voice reuse: first request vs same voice vs pure generation"),
    "p3": ("scaling", "scaling: 1 vs 2 localpod workers, 10 and 40 parallel requests"),
    "p4": ("streaming", "streaming: time to first audio / full synthesis, 10 s utterance"),
    "p5": ("payload", "payload: voice URL request vs base64-embedded request"),
    "p6": ("gpu_inference", "GPU inference: fp32/fp16, whole and streamed, vs plain coqui"),
    "p7": ("notebook_times", "notebooks: wall time under papermill against localpod"),
    "p8": ("cold_start", "cold start: worker start to first job vs bare model load"),
    "p9": ("batching", "batching: 1, 4, 8 requests at once, batched vs serialized decoding"),
    "p10": ("speech_measures", "speech measures: one 5 s clip, offline backends, on the CPU"),
    "p11": ("stream_continuity", "stream continuity: underruns at 50/100/200 ms buffers"),
}
ALIASES = {module.replace("_", "-"): name for name, (module, _) in BENCHMARKS.items()}
#: The longest one benchmark may run when several run in a row (seconds).
PER_BENCHMARK_TIMEOUT_S = 1800
#: Benchmarks that run the model in their own process. On a CPU they use this many torch
#: threads unless ``--threads`` says otherwise: on a shared 2-core machine two OpenMP threads
#: collapse whenever another process takes a core (the same synthesis measured 1.1 to 22 s with
#: two threads, 1.7 to 2.3 s with one), and medians of such samples say nothing.
IN_PROCESS = ("p2", "p4", "p6", "p9")
IN_PROCESS_THREADS = 1
#: Benchmarks that run on ``--device``; the others always run on the CPU.
DEVICE_BENCHMARKS = ("p6", "p9")


def build_parser() -> argparse.ArgumentParser:
    listing = ", ".join(f"{n} ({m.replace('_', '-')})" for n, (m, _) in BENCHMARKS.items())
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks: print a table of medians, spread and ratios and write JSON "
        f"under artifacts/bench/. Names: {listing}. Default: all.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run")
    parser.add_argument("--quick", action="store_true",
                        help="smallest parameters (smoke run); full-size model parts skipped")
    parser.add_argument("--full-size", action="store_true",
                        help="p2, p4, p9: the full-size XTTS architecture (random weights) as "
                        "well as or instead of the tiny model; long on a CPU")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    parser.add_argument("--repeats", type=int, default=None, help="override repeat counts")
    parser.add_argument("--device", default="cpu", help="p6, p9: cpu, cuda or cuda:N")
    parser.add_argument("--fp16", choices=("off", "on", "both"), default="off",
                        help="p6, p9: half precision (CUDA only; p9 takes on or off)")
    parser.add_argument("--model", default=None,
                        help="p6, p9: tiny, full (full-size, random weights) or a checkpoint "
                        "dir")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"torch threads for {', '.join(IN_PROCESS)} on a CPU "
                        f"(default {IN_PROCESS_THREADS})")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return parser


def resolve_names(names: list[str]) -> list[str]:
    resolved = []
    for raw in names or list(BENCHMARKS):
        name = raw.lower()
        name = ALIASES.get(name, name)
        if name not in BENCHMARKS:
            raise SystemExit(f"python -m benchmarks: unknown benchmark {raw!r}; known: "
                             f"{', '.join(BENCHMARKS)} ({', '.join(ALIASES)})")
        if name not in resolved:
            resolved.append(name)
    return resolved


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.list:
        for name, (module, title) in BENCHMARKS.items():
            print(f"{name}  {module.replace('_', '-'):16}  {title}")
        return 0
    names = resolve_names(args.names)
    options = BenchOptions(
        quick=args.quick, full_size=args.full_size, out_dir=args.out, device=args.device, fp16=args.fp16,
        model=args.model, repeats=args.repeats, threads=args.threads,
    )
    if len(names) == 1:
        return run_one(names[0], options, _command([names[0]], args))
    return run_many(names, args)


def _command(names: list[str], args: argparse.Namespace) -> str:
    return shlex.join(["python", "-m", "benchmarks", *names, *_flags(args)])


def _flags(args: argparse.Namespace) -> list[str]:
    parts = []
    if args.quick:
        parts.append("--quick")
    if args.full_size:
        parts.append("--full-size")
    if args.repeats is not None:
        parts += ["--repeats", str(args.repeats)]
    if args.out != DEFAULT_OUT:
        parts += ["--out", str(args.out)]
    if args.device != "cpu":
        parts += ["--device", args.device]
    if args.fp16 != "off":
        parts += ["--fp16", args.fp16]
    if args.model:
        parts += ["--model", args.model]
    if args.threads is not None:
        parts += ["--threads", str(args.threads)]
    return parts


def run_one(name: str, options: BenchOptions, command: str) -> int:
    """Run one benchmark in this process: print its table, write its JSON. Returns 1 only
    when the benchmark itself broke (never because a figure missed its target)."""
    from benchmarks.machine import machine_facts

    module_name, title = BENCHMARKS[name]
    device = options.device if name in DEVICE_BENCHMARKS else "cpu"
    if name in IN_PROCESS and device == "cpu":
        import torch

        torch.set_num_threads(options.threads or IN_PROCESS_THREADS)
    result = BenchResult(name=name, title=title, machine=machine_facts(device),
                         quick=options.quick, command=command)
    try:
        module = importlib.import_module(f"benchmarks.{module_name}")
        module.run(options, result)
    except Exception as exc:  # noqa: BLE001 - recorded in the result and the exit code
        result.error = f"{type(exc).__name__}: {exc}"
        result.data["traceback"] = traceback.format_exc()
    path = write_json(result, options.out_dir)
    print(table(result))
    print(f"  -> {path}")
    if result.error:
        print(result.data["traceback"], file=sys.stderr)
    return 1 if result.error else 0


def run_many(names: list[str], args: argparse.Namespace) -> int:
    """Each benchmark in its own process, one after another; then the summary table."""
    failures = []
    started = time.perf_counter()
    for name in names:
        command = [sys.executable, "-m", "benchmarks", name, *_flags(args)]
        print(f"\n### {name}: {BENCHMARKS[name][1]}", flush=True)
        try:
            code = subprocess.run(command, check=False, timeout=PER_BENCHMARK_TIMEOUT_S,
                                  stdin=subprocess.DEVNULL, env=os.environ.copy()).returncode
        except subprocess.TimeoutExpired:
            code = 124
            print(f"{name}: stopped after {PER_BENCHMARK_TIMEOUT_S} s", file=sys.stderr)
        if code:
            failures.append(name)
    summary = write_summary(names, args.out, _command(names, args))
    print(f"\n{summary.read_text()}\nall benchmarks: {time.perf_counter() - started:.0f} s; "
          f"summary -> {summary}")
    if failures:
        print(f"benchmarks that broke: {', '.join(failures)}", file=sys.stderr)
    return 1 if failures else 0


def write_summary(names: list[str], out_dir: Path, command: str) -> Path:
    """``summary.md``: one markdown table of every figure of the named benchmarks' JSON."""
    lines = [f"Command: `{command}`", "",
             "| benchmark | figure | value | spread | target | met |",
             "|---|---|---|---|---|---|"]
    machines = []
    for name in names:
        path = out_dir / f"{name}.json"
        if not path.is_file():
            lines.append(f"| {name} | (no result) | - | | | |")
            continue
        data = json.loads(path.read_text())
        machines.append(data["machine"])
        if data.get("error"):
            lines.append(f"| {name} | ERROR: {data['error'][:80]} | - | | | |")
        for f in data["figures"]:
            value = "-" if f["value"] is None else f"{fmt(f['value'])} {f['unit']}".strip()
            lines.append(f"| {name} | {f['label']} | {value} | {f['spread']} | "
                         f"{f['target']} | {verdict_text(f['met'])} |")
    if machines:
        first = machines[0]
        loads = [m.get("load_average_at_start", [None])[0] for m in machines]
        machine = (f"Machine: {first.get('cores')} cores ({first.get('cpu')}), "
                   f"{first.get('memory_gib')} GiB, torch {first.get('torch')}, Python "
                   f"{first.get('python')}, git {str(first.get('git_sha'))[:12]}; 1-min load "
                   f"average at each benchmark's start: {loads}")
        lines += ["", machine]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path
