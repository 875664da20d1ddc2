"""Notebook 02 in a real browser: JupyterLab in headless Chromium, the notebook run on a folder
of pre-made clips, a player visible, a play counted, a rating clicked, the row in SQLite."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nbformat
import numpy as np
import pytest

from honora_tts import audio
from honora_tts.qa.notebook_runner import notebook_path

pytestmark = [pytest.mark.browser, pytest.mark.notebooks, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
RATER = "browser-rater"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_clips(root: Path) -> Path:
    """Two conditions x two items of short tones: no endpoint needed."""
    rate = 24_000
    t = np.arange(int(0.8 * rate)) / rate
    for c, condition in enumerate(("baseline", "candidate")):
        for i, item in enumerate(("one", "two")):
            samples = (0.3 * np.sin(2 * np.pi * (220 + 110 * i + 330 * c) * t)).astype(np.float32)
            path = root / "clips" / condition / f"{item}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(audio.encode(samples, rate, "wav"))
    return root / "clips"


def parameterized_notebook(root: Path, clips: Path) -> Path:
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(notebook_path("02_listening_test")))
    nb = parameterize_notebook(nb, {
        "clips_dir": str(clips), "rater": RATER, "test_type": "mos", "seed": 11,
        "ratings_db": str(root / "ratings.sqlite"), "artifacts_dir": str(root / "artifacts"),
    })
    path = root / "listening.ipynb"
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def jupyter_lab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """JupyterLab on 127.0.0.1 serving ``tmp_path/root``; yields (URL with token, root)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    root = tmp_path / "root"
    root.mkdir()
    port, token = free_port(), secrets.token_hex(16)
    home = tmp_path / "jupyter"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    log = (tmp_path / "jupyter.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.port_retries=0", *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/api/status", params={"token": token}).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("JupyterLab did not start:\n"
                            + (tmp_path / "jupyter.log").read_text()[-3000:])
            time.sleep(0.5)
        yield f"{base}/lab/tree/listening.ipynb?token={token}", root
    finally:
        stop_group(server)
        log.close()


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (its kernels too), SIGKILL what is left."""
    for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait_s)
            if sig == signal.SIGTERM:
                os.killpg(process.pid, signal.SIGKILL)  # kernels left behind, if any
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            break
    process.wait()


def stored_rows(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as con:
        try:
            return con.execute("SELECT rater, score, plays, trial, hidden_condition "
                               "FROM ratings").fetchall()
        except sqlite3.OperationalError:
            return []


def test_rating_in_jupyterlab_lands_in_sqlite(jupyter_lab, tmp_path):
    from playwright.sync_api import sync_playwright

    url, root = jupyter_lab
    parameterized_notebook(root, make_clips(root))
    db = root / "ratings.sqlite"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1000},
        )
        try:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function("window.jupyterapp && window.jupyterapp.shell", timeout=120_000)
            page.locator(".jp-Notebook").first.wait_for(timeout=120_000)
            page.wait_for_function(
                "document.querySelector('.jp-Notebook') && "
                "window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel "
                "?.status === 'idle'", timeout=120_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

            player = page.locator(".honora-listening-test audio").first
            player.wait_for(state="visible", timeout=180_000)
            assert player.is_visible()
            assert player.evaluate("el => !el.autoplay && !el.loop && el.controls")
            heading = page.locator(".honora-listening-test h4").first.inner_text()
            assert heading.startswith("Trial 1 of 4")
            assert "baseline" not in page.locator(".honora-listening-test").inner_text()

            player.evaluate("el => el.play().catch(() => undefined)")
            page.locator(".honora-rate-4").first.click()

            deadline = time.monotonic() + 240  # the kernel may still be running later cells
            while not stored_rows(db) and time.monotonic() < deadline:
                time.sleep(1)
            rows = stored_rows(db)
            assert len(rows) == 1, "the rating click did not reach the ratings store"
            rater, score, plays, trial, condition = rows[0]
            assert (rater, score, trial) == (RATER, 4.0, 0)
            assert condition in {"baseline", "candidate"}
            assert plays >= 1, "the browser's play event was not counted"
            page.locator(".honora-listening-test h4").filter(
                has_text="Trial 2 of 4").wait_for(timeout=60_000)
        finally:
            if browser.pages:  # kept with the test's files, for a look when it fails
                browser.pages[-1].screenshot(path=str(tmp_path / "jupyterlab.png"))
            browser.close()
