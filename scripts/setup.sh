#!/usr/bin/env bash
# Idempotent setup: Debian packages, then a virtual environment holding exactly requirements.lock.
# VENV (default .venv) may point anywhere; CI points it at a cache keyed by the lock file's hash.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"

need_debs=()
for pkg in ffmpeg espeak-ng; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_debs+=("$pkg")
done
if [ "${HONORA_BROWSER_TESTS:-1}" = "1" ]; then
  dpkg -s chromium >/dev/null 2>&1 || need_debs+=(chromium)
fi
# Without uv on PATH, uv goes into a bootstrap venv (below), which Debian's Python builds only
# with python3-venv.
if ! command -v uv >/dev/null 2>&1 && ! python3 -c "import ensurepip, venv" 2>/dev/null; then
  need_debs+=(python3-venv)
fi
if [ "${#need_debs[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_debs[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_debs[@]}" >/dev/null
fi

# uv builds the venv. Where no uv is on PATH it goes into a small bootstrap venv of its own, so
# that a system Python that refuses pip installs (PEP 668, stock Debian/Ubuntu) is never touched.
UV="$(command -v uv || true)"
if [ -z "$UV" ]; then
  tools="${HONORA_TOOLS_DIR:-$HOME/.cache/honora-tts/tools}"
  if [ ! -x "$tools/bin/uv" ]; then
    echo "setup: installing uv into $tools"
    python3 -m venv "$tools"
    "$tools/bin/python" -m pip install -q uv
  fi
  UV="$tools/bin/uv"
fi

# The stamp names the lock and this recipe's version: bump RECIPE when the way the venv is built
# changes, so cached environments are rebuilt.
RECIPE=2  # 2: bytecode compiled at install
stamp="$(sha256sum requirements.lock | cut -c1-16)-r$RECIPE"
if [ -f "$VENV/.honora-lock" ] && [ "$(cat "$VENV/.honora-lock")" = "$stamp" ]; then
  echo "setup: $VENV already holds requirements.lock ($stamp)"
else
  echo "setup: building $VENV from requirements.lock (first time: a few minutes, about 5 GB with torch)"
  rm -rf "$VENV"
  "$UV" venv -q --python 3.11 "$VENV"
  # Bytecode is compiled once here: without it (PYTHONDONTWRITEBYTECODE is common on CI
  # machines) every worker process compiles torch, transformers and coqui-tts from source
  # at import, and a localpod worker takes 15 s to start instead of 8 s.
  VIRTUAL_ENV="$VENV" "$UV" pip sync -q --compile-bytecode --python "$VENV/bin/python" requirements.lock
  echo "$stamp" > "$VENV/.honora-lock"
fi
# The package itself is always (re)linked: it is editable and costs a second.
"$UV" pip install -q --python "$VENV/bin/python" --no-deps -e .
"$VENV/bin/python" -c "import honora_tts, TTS, torch, runpod; print('setup: ok, torch', torch.__version__, '| coqui-tts', TTS.__version__, '| runpod', runpod.__version__)"
