#!/usr/bin/env bash
# P6 (inference vs plain coqui, fp32 and fp16) and P9 (batching) on a GPU machine, in under
# 8 minutes, the figures written to $OUT (default artifacts/gpu-check).
#
#   benchmarks/gpu_check.sh                     # run both on CUDA
#   benchmarks/gpu_check.sh --wheels DIR        # first install what is missing from wheels in DIR
#   benchmarks/gpu_check.sh --dry-run           # check the machine and print the plan; run nothing
#   benchmarks/gpu_check.sh --device cpu        # the same plan on a CPU (--quick sizes): a rehearsal
#   benchmarks/gpu_check.sh --download DIR      # where the registry is reachable: fetch the wheels
#
# What it needs: Python 3.12 (or the one the wheels are for) with torch 2.11.0 and torchaudio
# 2.11.0 (the lent GPU machine has them), and benchmarks/gpu_requirements.txt (the XTTS path's
# packages, installed with --no-deps from --wheels DIR, into a venv over the system's torch).
# No network: the full-size checkpoint (random weights, 1.8 GB) is built on the machine in
# HONORA_CACHE_DIR (default /tmp/honora-gpu-cache, not $OUT: $OUT comes back). The machine's
# facts, each benchmark's log and JSON, and summary.md land in $OUT.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT="${OUT:-artifacts/gpu-check}"
PY="${PYTHON:-python3}"
DEVICE=cuda
DRY=0
WHEELS=""
DOWNLOAD=""
#: Per-benchmark limits (seconds): together under 8 minutes with the set-up.
P6_LIMIT="${P6_LIMIT:-270}"
P9_LIMIT="${P9_LIMIT:-180}"

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --device) DEVICE="$2"; shift ;;
    --wheels) WHEELS="$2"; shift ;;
    --download) DOWNLOAD="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ -n "$DOWNLOAD" ]; then
  mkdir -p "$DOWNLOAD"
  exec "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --implementation cp \
    -r benchmarks/gpu_requirements.txt -d "$DOWNLOAD"
fi

mkdir -p "$OUT"
if [ -n "$WHEELS" ]; then
  VENV="${GPU_CHECK_VENV:-/tmp/honora-gpu-venv}"
  "$PY" -m venv --system-site-packages "$VENV"
  "$VENV/bin/python" -m pip install --quiet --no-index --no-deps --find-links "$WHEELS" \
    -r benchmarks/gpu_requirements.txt
  PY="$VENV/bin/python"
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HONORA_CACHE_DIR="${HONORA_CACHE_DIR:-/tmp/honora-gpu-cache}"
export PYTHONDONTWRITEBYTECODE=1

# The machine, and what is missing (exit 3 naming it, with the command that installs it).
if ! "$PY" - "$OUT/environment.json" "$DEVICE" <<'PYTHON'
import importlib, json, platform, sys

out, device = sys.argv[1], sys.argv[2]
facts = {"python": platform.python_version(), "device": device, "missing": []}
for module in ("torch", "torchaudio", "numpy", "scipy", "soundfile", "pydantic",
               "pydantic_settings", "transformers", "tokenizers", "librosa", "pysbd",
               "num2words", "TTS.tts.models.xtts", "honora_tts.model", "benchmarks.gpu_inference"):
    try:
        loaded = importlib.import_module(module)
        facts[module] = getattr(loaded, "__version__", "ok")
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        facts["missing"].append(f"{module} ({type(exc).__name__}: {exc})")
if "torch" in facts:
    import torch

    facts["cuda_available"] = torch.cuda.is_available()
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(0)
        facts["cuda"] = torch.version.cuda
    elif device.startswith("cuda"):
        facts["missing"].append("a CUDA device (torch.cuda.is_available() is False)")
json.dump(facts, open(out, "w"), indent=2)
print(json.dumps(facts, indent=2))
sys.exit(1 if facts["missing"] else 0)
PYTHON
then
  echo "gpu_check.sh: missing above. Install: benchmarks/gpu_check.sh --wheels DIR, with DIR" \
       "from 'benchmarks/gpu_check.sh --download DIR' where the registry is reachable" >&2
  exit 3
fi

if [ "$DEVICE" = cpu ]; then
  P6=(-m benchmarks p6 --device cpu --quick --out "$OUT")
  P9=(-m benchmarks p9 --device cpu --quick --out "$OUT")
else
  P6=(-m benchmarks p6 --device "$DEVICE" --fp16 both --repeats 3 --out "$OUT")
  P9=(-m benchmarks p9 --device "$DEVICE" --fp16 on --out "$OUT")
fi
echo "plan: timeout $P6_LIMIT $PY ${P6[*]}"
echo "plan: timeout $P9_LIMIT $PY ${P9[*]}"
[ "$DRY" = 1 ] && { echo "dry run: nothing run"; exit 0; }

status=0
started=$(date +%s)
timeout "$P6_LIMIT" "$PY" "${P6[@]}" > "$OUT/p6.log" 2>&1 || { status=$?; echo "p6: exit $status (see $OUT/p6.log)" >&2; }
timeout "$P9_LIMIT" "$PY" "${P9[@]}" > "$OUT/p9.log" 2>&1 || { status=$?; echo "p9: exit $status (see $OUT/p9.log)" >&2; }
"$PY" -c "import sys; from benchmarks import write_summary; from pathlib import Path; \
print(write_summary(['p6', 'p9'], Path(sys.argv[1]), 'benchmarks/gpu_check.sh').read_text())" "$OUT"
echo "gpu_check.sh: $(( $(date +%s) - started )) s; figures in $OUT"
exit "$status"
