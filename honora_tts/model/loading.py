"""Loading a model: where its checkpoint comes from, which device, fp16, and the process's
cache of loaded models (one per checkpoint, device and precision).

Settings (:class:`~honora_tts.settings.WorkerSettings`, when an argument is not given)
    ``HONORA_XTTS_CHECKPOINT`` (a checkpoint directory), ``HONORA_XTTS_MODEL`` (``tiny``,
    ``xtts_v2`` or a directory), ``HONORA_DEVICE`` (``cpu``, ``cuda``, ``cuda:N``, ``auto``),
    ``HONORA_FP16`` (CUDA only: ignored with a warning on a CPU, where an explicit ``fp16=True``
    is refused), ``HONORA_LATENT_CACHE_ENTRIES`` (in-memory latents, default 64),
    ``HONORA_LATENT_DISK_ENTRIES`` (latent files kept per model, default 1000). The cache
    directory is ``HONORA_CACHE_DIR`` (:func:`honora_tts.files.cache_dir`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from honora_tts.model.checkpoints import recorded_metadata, tiny_checkpoint_dir, weights_checksum
from honora_tts.model.constants import CHECKPOINT_FILES
from honora_tts.model.coqui_import import skip_unused_sklearn_import
from honora_tts.model.xtts_model import XttsModel
from honora_tts.protocol import ErrorCode, WorkerError
from honora_tts.settings import SettingsError, WorkerSettings

logger = logging.getLogger(__name__)

XTTS_V2_MODEL_NAME = "tts_models/multilingual/multi-dataset/xtts_v2"


class ModelLoadError(WorkerError):
    """The model could not be loaded; ``code`` is ``model_not_ready``."""

    def __init__(self, message: str):
        super().__init__(ErrorCode.MODEL_NOT_READY, message)


def _resolve_device(device: str | None, settings: WorkerSettings) -> str:
    import torch

    wanted = (device or settings.device).strip().lower()
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cpu":
        return "cpu"
    if re.fullmatch(r"cuda(:\d+)?", wanted):
        if not torch.cuda.is_available():
            raise ModelLoadError(f"device {wanted!r} was asked for but CUDA is not available")
        return wanted
    raise ModelLoadError(f"unknown device {wanted!r}; use cpu, cuda, cuda:N or auto")


def _resolve_fp16(fp16: bool | None, device: str, settings: WorkerSettings) -> bool:
    if fp16 is not None:
        if fp16 and not device.startswith("cuda"):
            raise ModelLoadError(
                f"fp16 needs a CUDA device; this model would run on {device!r}. "
                "Drop fp16 (or HONORA_FP16) on CPUs."
            )
        return fp16
    if settings.fp16:
        if device.startswith("cuda"):
            return True
        logger.warning("HONORA_FP16 is set but the model runs on %s: ignored (fp32)", device)
    return False


def _xtts_v2_dir(settings: WorkerSettings) -> Path:
    from TTS.utils.manage import ModelManager

    manager = ModelManager(progress_bar=False)
    target = Path(manager.output_prefix) / XTTS_V2_MODEL_NAME.replace("/", "--")
    if not _has_checkpoint_files(target) and not settings.coqui_tos_agreed:
        raise ModelLoadError(
            "XTTS-v2 is not downloaded and downloading it needs COQUI_TOS_AGREED=1 (Coqui Public "
            "Model License, non-commercial) and network access. Point HONORA_XTTS_CHECKPOINT at "
            "a checkpoint directory (model.pth, config.json, vocab.json), or set "
            "HONORA_XTTS_MODEL=tiny for the offline tiny model (random weights)."
        )
    try:
        model_path, _, _ = manager.download_model(XTTS_V2_MODEL_NAME)
    except Exception as exc:
        raise ModelLoadError(
            f"downloading XTTS-v2 failed ({type(exc).__name__}: {exc}). Without network access "
            "set HONORA_XTTS_CHECKPOINT to a checkpoint directory, or HONORA_XTTS_MODEL=tiny."
        ) from exc
    path = Path(model_path)
    return path if path.is_dir() else path.parent


def _has_checkpoint_files(directory: Path) -> bool:
    return all((directory / name).is_file() for name in CHECKPOINT_FILES)


def _resolve_source(source: str | None, settings: WorkerSettings) -> tuple[Path, str | None]:
    """Checkpoint directory and, for the release, its name."""
    if source is None:
        checkpoint = str(settings.xtts_checkpoint or "").strip()
        source = checkpoint or settings.xtts_model.strip() or "xtts_v2"
    if source == "tiny":
        return tiny_checkpoint_dir(0), None
    if source == "xtts_v2":
        return _xtts_v2_dir(settings), "xtts_v2"
    directory = Path(source).expanduser()
    if not directory.is_dir():
        raise ModelLoadError(
            f"model source {source!r} is neither 'tiny', 'xtts_v2' nor an existing checkpoint "
            "directory (HONORA_XTTS_CHECKPOINT / HONORA_XTTS_MODEL)"
        )
    missing = [name for name in CHECKPOINT_FILES if not (directory / name).is_file()]
    if missing:
        raise ModelLoadError(f"checkpoint directory {directory} lacks {', '.join(missing)}")
    return directory, None



class _Phases:
    """Milliseconds per phase of a model load, measured where each happens: finding (or
    building) the checkpoint, importing torch and coqui-tts, reading the checkpoint, moving it
    to the device, the weights' checksum; ``total_ms`` is the whole load."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self._started = time.perf_counter()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round((time.perf_counter() - started) * 1000, 1)

    def total(self) -> dict[str, float]:
        return {**self.ms, "total_ms": round((time.perf_counter() - self._started) * 1000, 1)}


def _open_checkpoint(
    directory: Path, name: str | None, device: str, fp16: bool, settings: WorkerSettings,
    phases: _Phases,
) -> XttsModel:
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    metadata = recorded_metadata(directory)
    try:
        with phases.phase("checkpoint_ms"):
            config = XttsConfig()
            config.load_json(str(directory / "config.json"))
            model = Xtts(config)
            model.load_checkpoint(
                config,
                checkpoint_dir=str(directory),
                vocab_path=str(directory / "vocab.json"),
                eval=True,
                use_deepspeed=False,
            )
        with phases.phase("to_device_ms"):
            model.to(device)
    except Exception as exc:
        raise ModelLoadError(
            f"loading the XTTS checkpoint in {directory} failed: {type(exc).__name__}: {exc}"
        ) from exc
    with phases.phase("weights_checksum_ms"):
        checksum = weights_checksum(directory / "model.pth")
    return XttsModel(
        model,
        name=name or str(metadata.get("name") or directory.name),
        weights_sha256=checksum,
        device=device,
        fp16=fp16,
        checkpoint_dir=directory,
        default_max_new_tokens=metadata.get("default_max_new_tokens"),
        latent_memory_entries=settings.latent_cache_entries,
        latent_disk_entries=settings.latent_disk_entries,
        load_phases=phases.total(),
    )


_loaded: dict[tuple[str, str, bool], XttsModel] = {}
_load_lock = threading.Lock()


def load_model(
    source: str | None = None,
    *,
    device: str | None = None,
    fp16: bool | None = None,
    settings: WorkerSettings | None = None,
) -> XttsModel:
    """The model asked for, loaded on first call and kept: a later call for the same checkpoint,
    device and precision returns the same object (thread-safe).

    ``source``: ``"tiny"``, ``"xtts_v2"`` or a checkpoint directory; default
    ``HONORA_XTTS_CHECKPOINT``, else ``HONORA_XTTS_MODEL``, else ``"xtts_v2"``. ``device``:
    default ``HONORA_DEVICE``, else CUDA when available. ``fp16``: default ``HONORA_FP16``;
    CUDA only. Those defaults come from ``settings`` (default: read from the environment
    now). Raises :class:`ModelLoadError`."""
    from honora_tts.version import record_loaded_model

    if settings is None:
        try:
            settings = WorkerSettings.from_env()
        except SettingsError as exc:
            raise ModelLoadError(str(exc)) from None
    with _load_lock:
        phases = _Phases()
        with phases.phase("imports_ms"):  # torch and coqui-tts: the first load of a process
            skip_unused_sklearn_import()
            import TTS.tts.models.xtts  # noqa: F401
        resolved_device = _resolve_device(device, settings)
        half = _resolve_fp16(fp16, resolved_device, settings)
        with phases.phase("checkpoint_source_ms"):  # the tiny model is built on first use
            directory, name = _resolve_source(source, settings)
        key = (str(directory.resolve()), resolved_device, half)
        model = _loaded.get(key)
        if model is None:
            model = _open_checkpoint(directory, name, resolved_device, half, settings, phases)
            logger.info("loaded %s (%s) on %s%s in %.1f s (%s)", model.name,
                        model.weights_sha256[:12], resolved_device, " fp16" if half else "",
                        model.load_phases["total_ms"] / 1000,
                        ", ".join(f"{k} {v:.0f}" for k, v in model.load_phases.items()))
            _loaded[key] = model
        record_loaded_model(model.name, model.weights_sha256, resolved_device)
        return model


def forget_loaded_models() -> None:
    """Drop the process's loaded models (tests, benchmarks), stopping their schedulers: the
    next :func:`load_model` loads again."""
    with _load_lock:
        models = list(_loaded.values())
        _loaded.clear()
    for model in models:
        model.close()
