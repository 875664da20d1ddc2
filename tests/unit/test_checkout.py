"""The one place that knows where the source checkout is (``honora_tts.checkout``)."""

from __future__ import annotations

from pathlib import Path

from honora_tts import checkout


def test_this_test_run_is_in_the_checkout_and_runs_its_worker_handler():
    assert checkout.is_checkout()
    assert checkout.worker_entry() == checkout.WORKER_HANDLER
    assert (checkout.ROOT / "Dockerfile.runpod").is_file()
    assert checkout.NOTEBOOKS_DIR.is_dir() and checkout.STALE_HANDLER.is_file()


def test_an_installed_package_runs_its_own_worker_entry(monkeypatch, tmp_path):
    monkeypatch.setattr(checkout, "WORKER_HANDLER", tmp_path / "worker" / "handler.py")
    assert not checkout.is_checkout()
    entry = checkout.worker_entry()
    assert entry == checkout.PACKAGE_WORKER_ENTRY and entry.is_file()
    assert "honora_tts.worker.start import main" in Path(entry).read_text()
