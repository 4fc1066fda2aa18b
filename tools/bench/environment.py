"""Where the figures come from (machine, load, pinning, library versions), and pinning the process."""

from __future__ import annotations

import gc
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def cpu_name() -> str:
    """The CPU model, from /proc/cpuinfo where there is one."""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def machine(device: str) -> dict:
    """CPU, cores, the cores this process may run on, torch threads, the CPU kernels torch dispatches to (what
    `ATEN_CPU_CAPABILITY` selects), device, and the load now."""
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "all"
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "affinity": affinity,
        "threads": torch.get_num_threads(),
        "kernels": torch.backends.cpu.get_cpu_capability(),
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
        "load_start": os.getloadavg()[0],
    }


def versions() -> dict[str, str]:
    """Library versions, and the commit of this checkout."""
    found = {"python": platform.python_version()}
    for package in ("torch", "transformers", "trl", "lightning", "peft"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    try:
        command = ["git", "-C", str(ROOT), "describe", "--always", "--dirty"]
        commit = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {**found, "audio-thinker commit": commit}


def pin(threads: int, core: int | None, device: str) -> None:
    """`threads` torch threads on a CPU, and this process pinned to `core` (what `taskset -c N` does)."""
    if threads and not device.startswith("cuda"):
        torch.set_num_threads(threads)
    if core is not None and core >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})


def release_memory(device: str) -> None:
    """Free the models of finished runs now: a Lightning run leaves its module in reference cycles that only the
    cycle collector frees, and GPU memory never triggers it (10 rounds of 7B-wide runs would pile up on the GPU)."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
