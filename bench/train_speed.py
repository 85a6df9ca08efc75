"""Training speed: train.py's defaults next to the textbook recipe, in one run.

Runs `train.py` with its defaults (to a temporary file; the shipped model is not touched)
and the textbook recipe (course-notes CNN, SGD lr 0.2, 5 epochs, batch 64, no
augmentation), then prints wall time and test accuracy after every epoch, the time to
99.0% and to 99.5%, and their ratio to the textbook recipe's 5-epoch time.

    python -m bench.train_speed                    # MNIST from $MNIST_DIR or data/mnist
    python -m bench.train_speed --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench import textbook
from model import mnist
from model.device import resolve_device

ROOT = Path(__file__).resolve().parents[1]


def first_time_at(history: list[tuple[int, float, float]], target: float) -> float | None:
    return next((seconds for _, seconds, acc in history if acc >= target), None)


def fmt(seconds: float | None) -> str:
    return "not reached" if seconds is None else f"{seconds:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    data_dir = str(mnist.resolve_data_dir(args.data_dir))

    # The textbook recipe, timed in this process on the CPU threads torch has by default.
    train_x, train_y = mnist.load("train", data_dir)
    test_x, test_y = mnist.load("test", data_dir)
    reference: list[tuple[int, float, float]] = []
    print("textbook recipe ...", file=sys.stderr)
    textbook.train(train_x, train_y, test_x, test_y, epochs=5,
                   on_epoch=lambda e, s, a: reference.append((e, s, a)))

    # train.py's defaults, as a user runs it; its metadata has the per-epoch history.
    print("train.py defaults ...", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.safetensors"
        started = time.perf_counter()
        subprocess.run([sys.executable, "train.py", "--data-dir", data_dir, "--device", str(device), "--out", str(out)],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        meta = json.loads(out.with_suffix(".json").read_text())
    ours = [(h["epoch"], h["elapsed_s"], h["test_accuracy"]) for h in meta["history"]]

    device_name = meta["training"]["device"]
    print(f"\nTraining speed on {device_name} ({os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads, "
          f"{platform.processor() or platform.machine()}), torch {torch.__version__}\n")
    print("| epoch | digitpad time | digitpad accuracy | textbook time | textbook accuracy |")
    print("|------:|--------------:|------------------:|--------------:|------------------:|")
    for i in range(max(len(ours), len(reference))):
        a = f"{ours[i][1]:12.1f}s | {ours[i][2]:16.2%}" if i < len(ours) else f"{'':>13} | {'':>16}"
        b = f"{reference[i][1]:12.1f}s | {reference[i][2]:16.2%}" if i < len(reference) else f"{'':>13} | {'':>16}"
        print(f"| {i + 1:5d} | {a} | {b} |")
    textbook_total = reference[-1][1]
    print(f"\ntextbook recipe: 5 epochs in {textbook_total:.1f} s, {reference[-1][2]:.2%}")
    print(f"digitpad: {len(ours)} epochs in {ours[-1][1]:.1f} s ({wall:.0f} s for the whole command), "
          f"{meta['test_accuracy']:.2%}")
    for target in (0.99, 0.995):
        seconds = first_time_at(ours, target)
        ratio = f" = {seconds / textbook_total:.2f}x the textbook's 5 epochs" if seconds is not None else ""
        print(f"digitpad time to {target:.1%}: {fmt(seconds)}{ratio}  (textbook: {fmt(first_time_at(reference, target))})")


if __name__ == "__main__":
    main()
