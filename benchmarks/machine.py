"""Facts about the machine a benchmark ran on, recorded with every result."""

from __future__ import annotations

import os
import platform
from typing import Any


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine_facts(device: str = "cpu") -> dict[str, Any]:
    """Cores, CPU, memory, Python, torch (and GPU when one is used), git sha, load average."""
    from honora_tts.version import git_sha

    facts: dict[str, Any] = {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "git_sha": git_sha(),
        "load_average_at_start": load_average(),
    }
    try:
        import torch

        facts["torch"] = torch.__version__
        facts["torch_threads"] = torch.get_num_threads()
        facts["cuda_available"] = torch.cuda.is_available()
        if device.startswith("cuda") and torch.cuda.is_available():
            facts["gpu"] = torch.cuda.get_device_name(torch.device(device))
            facts["cuda"] = torch.version.cuda
    except ImportError:
        facts["torch"] = None
    return facts
