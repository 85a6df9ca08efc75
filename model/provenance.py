"""How a model was made, for its metadata: when, on what, with which settings and data.

Shared by every training script, so that each model's JSON answers the same questions.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from datetime import datetime, timezone
from typing import Any

import torch

from model import mnist
from model.device import resolve_device

# Paths and the machine are not hyperparameters, and a corrections source may be a database URL
# holding a password: none of these go into a model's metadata.
NOT_HYPERPARAMETERS = ("out", "data_dir", "device", "threads", "finetune", "corrections")


def setup(device: str, threads: int | None, seed: int) -> torch.device:
    """The device to train on (ValueError if it cannot be had), CPU threads and the seed."""
    resolved = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    return resolved


def stamp() -> dict[str, str]:
    """A new model's version (its UTC minute) and creation time."""
    now = datetime.now(timezone.utc)
    return {"version": now.strftime("%Y.%m.%d.%H%M"), "created": now.isoformat(timespec="seconds")}


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        return out.stdout.strip() or None
    except OSError:
        return None


def record(args: argparse.Namespace, device: torch.device, started: float) -> dict[str, Any]:
    """The training run (time since `started`, device, threads, hyperparameters), MNIST's
    checksums, the torch version and the git commit."""
    return {
        "training": {
            "seconds": round(time.perf_counter() - started, 1),
            "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
            "threads": torch.get_num_threads(),
            "hyperparameters": {k: v for k, v in vars(args).items() if k not in NOT_HYPERPARAMETERS},
        },
        "data_md5": {f.name: f.md5 for split in mnist.FILES.values() for f in split},
        "torch_version": torch.__version__,
        "git_commit": git_commit(),
    }
