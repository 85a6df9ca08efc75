"""The model as the service uses it: loaded once, made cheap for inference, called in batches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from model import checkpoint
from model.device import resolve_device


def answer(probabilities: np.ndarray) -> dict[str, Any]:
    """One image's probabilities as the API and the command line report them."""
    digit = int(probabilities.argmax())
    return {
        "digit": digit,
        "confidence": round(float(probabilities[digit]), 6),
        "probabilities": [round(float(p), 6) for p in probabilities],
    }


def fold_batchnorm(net: nn.Module) -> nn.Module:
    """Fold every BatchNorm into the convolution before it: same outputs, a third fewer ops."""
    for name, child in net.named_children():
        if isinstance(child, nn.Sequential):
            layers = list(child)
            folded = []
            for layer in layers:
                if isinstance(layer, nn.BatchNorm2d) and folded and isinstance(folded[-1], nn.Conv2d):
                    folded[-1] = fuse_conv_bn_eval(folded[-1], layer)
                else:
                    folded.append(layer)
            setattr(net, name, nn.Sequential(*folded))
        else:
            fold_batchnorm(child)
    return net


class Classifier:
    """Class probabilities (the ten digits; the segment reader adds an eleventh) for batches of
    28x28 images, on the configured device."""

    def __init__(self, weights: str | Path, device: str = "auto") -> None:
        self.device = resolve_device(device)
        net, self.metadata = checkpoint.load(Path(weights), self.device)
        # Channels-last suits the CPU's convolution kernels: a third faster at batch size 1.
        self.net = fold_batchnorm(net).eval().to(memory_format=torch.channels_last)
        self.name = self.metadata.get("name", "digitpad-cnn")
        self.version = self.metadata.get("version", "unknown")
        self.temperature = float(self.metadata.get("temperature", 1.0))

    @torch.inference_mode()
    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) floats in [0, 1] -> (N, classes) softmax probabilities."""
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(self.device)
        logits = self.net(x.unsqueeze(1).contiguous(memory_format=torch.channels_last)).float() / self.temperature
        return torch.softmax(logits, dim=1).cpu().numpy()

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version}


STEP = 4  # the line reader's output comes every this many columns of the line


class LineReader:
    """The line model (model/lines.safetensors): how likely a line of digits is to read as each of
    several readings, by CTC, the sum over every way the reading can be laid along the line; and
    what it reads there on its own."""

    def __init__(self, weights: str | Path, device: str = "auto") -> None:
        self.device = resolve_device(device)
        net, self.metadata = checkpoint.load(Path(weights), self.device)
        self.net = fold_batchnorm(net).eval()

    @torch.inference_mode()
    def log_likelihoods(self, line: np.ndarray, readings: Sequence[str]) -> np.ndarray:
        """(28, W) line (see `preprocess.to_line`) and readings such as "17" -> log P(reading | line)
        each; minus infinity for a reading too long to fit."""
        x = torch.from_numpy(np.ascontiguousarray(line, dtype=np.float32))[None, None].to(self.device)
        # The network on its device; CTC's small dynamic programme on the CPU.
        log_probs = F.log_softmax(self.net(x).float(), dim=1)[0].T.cpu()  # (steps, blank + 10 digits)
        steps = log_probs.shape[0]
        targets = torch.tensor([int(c) + 1 for reading in readings for c in reading], dtype=torch.long)
        lengths = torch.tensor([len(reading) for reading in readings], dtype=torch.long)
        losses = F.ctc_loss(log_probs[:, None].expand(steps, len(readings), -1), targets,
                            torch.full((len(readings),), steps, dtype=torch.long), lengths, reduction="none")
        return -losses.numpy()

    @torch.inference_mode()
    def read(self, line: np.ndarray) -> list[tuple[np.ndarray, float, float]]:
        """The line read on its own (best path: the likeliest class at every step, repeats merged,
        blanks dropped): for each digit, its ten probabilities where the line reader is surest of
        it, and the columns of the line it spans, from and to."""
        x = torch.from_numpy(np.ascontiguousarray(line, dtype=np.float32))[None, None].to(self.device)
        probabilities = torch.softmax(self.net(x).float(), dim=1)[0].T.cpu().numpy()  # (steps, 11)
        best = probabilities.argmax(1)
        found = []
        step = 0
        while step < len(best):
            end = step
            while end + 1 < len(best) and best[end + 1] == best[step]:
                end += 1
            if best[step] != 0:  # a run of one digit, not of blanks
                surest = step + int(probabilities[step:end + 1, best[step]].argmax())
                digits = probabilities[surest, 1:]
                found.append((digits / digits.sum(), STEP * step, STEP * (end + 1)))
            step = end + 1
        return found


class NumberReader:
    """The models segmentation asks (see `app.core.segment.Reader`): the digit classifier for what
    a piece is, the segment reader for whether it is one whole digit at all, and the line reader
    for which reading of a group of touching digits fits its ink best."""

    def __init__(self, digits: Classifier, segments: Classifier, lines: LineReader) -> None:
        self.classifier = digits
        self.segments = segments
        self.lines = lines
        self.junk = segments.net.classifier.out_features - 1  # its last class: not one whole digit

    def digits(self, fields: np.ndarray) -> np.ndarray:
        return self.classifier.probabilities(fields)

    def wholeness(self, fields: np.ndarray) -> np.ndarray:
        return 1 - self.segments.probabilities(fields)[:, self.junk]

    def readings(self, line: np.ndarray, readings: Sequence[str]) -> np.ndarray:
        return self.lines.log_likelihoods(line, readings)

    def read_line(self, line: np.ndarray) -> list[tuple[np.ndarray, float, float]]:
        return self.lines.read(line)
