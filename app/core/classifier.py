"""The model as the service uses it: loaded once, made cheap for inference, called in batches."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from app.core.runtime import Runner
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
    28x28 images, on the configured device, run by the configured runtime (`app.core.runtime`)."""

    def __init__(self, weights: str | Path, device: str = "auto", runtime: str = "auto") -> None:
        self.device = resolve_device(device)
        net, self.metadata = checkpoint.load(Path(weights), self.device)
        self.runner = Runner(fold_batchnorm(net), self.device, runtime)
        self.net = self.runner.net  # the PyTorch network itself, for /explain's hooks and gradients
        self.name = self.metadata.get("name", "digitpad-cnn")
        self.version = self.metadata.get("version", "unknown")
        self.temperature = float(self.metadata.get("temperature", 1.0))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) floats in [0, 1] -> (N, classes) softmax probabilities."""
        logits = self.runner(np.asarray(images)[:, None]) / self.temperature
        return torch.softmax(logits, dim=1).numpy()

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version}


STEP = 4  # the line reader's output comes every this many columns of the line


class LineReading:
    """What the line reader made of one line: the log-probabilities of CTC's blank and of each
    digit, every STEP columns. Asked how likely each of several readings is, and what it reads
    there on its own, without running the network again."""

    def __init__(self, log_probs: torch.Tensor) -> None:
        self.log_probs = log_probs  # (steps, blank + 10 digits), on the CPU

    def likelihoods(self, readings: Sequence[str]) -> np.ndarray:
        """log P(reading | line) for readings such as "17": CTC's sum over every way the reading can
        be laid along the line; minus infinity for a reading too long to fit."""
        steps = self.log_probs.shape[0]
        targets = torch.tensor([int(c) + 1 for reading in readings for c in reading], dtype=torch.long)
        lengths = torch.tensor([len(reading) for reading in readings], dtype=torch.long)
        losses = F.ctc_loss(self.log_probs[:, None].expand(steps, len(readings), -1), targets,
                            torch.full((len(readings),), steps, dtype=torch.long), lengths, reduction="none")
        return -losses.numpy()

    def best_path(self) -> list[tuple[np.ndarray, float, float]]:
        """The line read on its own (the likeliest class at every step, repeats merged, blanks
        dropped): for each digit, its ten probabilities where the line reader is surest of it, and
        the columns of the line it spans, from and to."""
        probabilities = self.log_probs.exp().numpy()
        found, start = [], 0
        for label, run in itertools.groupby(probabilities.argmax(1).tolist()):
            end = start + len(list(run))
            if label:  # a run of one digit, not of blanks
                surest = start + int(probabilities[start:end, label].argmax())
                digits = probabilities[surest, 1:]
                found.append((digits / digits.sum(), STEP * start, STEP * end))
            start = end
        return found


class LineReader:
    """The line model (model/lines.safetensors), which reads a whole line of digits at once."""

    def __init__(self, weights: str | Path, device: str = "auto", runtime: str = "auto") -> None:
        self.device = resolve_device(device)
        net, self.metadata = checkpoint.load(Path(weights), self.device)
        self.runner = Runner(fold_batchnorm(net), self.device, runtime, example=(1, 1, 28, 120), width_varies=True)

    def read(self, line: np.ndarray) -> LineReading:
        """A (28, W) line (see `preprocess.to_line`) through the network, once."""
        # The network on its device; CTC's small dynamic programme on the CPU.
        return LineReading(F.log_softmax(self.runner(np.asarray(line)[None, None]), dim=1)[0].T)


class NumberReader:
    """The models segmentation asks (see `app.core.segment.Reader`): the digit classifier for what
    a piece is, the segment reader for whether it is one whole digit at all, and the line reader
    for which reading of a group of touching digits fits its ink best."""

    def __init__(self, digits: Classifier, segments: Classifier, lines: LineReader) -> None:
        self.classifier = digits
        self.segments = segments
        self.lines = lines
        self.junk = segments.net.classifier.out_features - 1  # its last class: not one whole digit

    @classmethod
    def load(cls, digits: Classifier, segments: str | Path = checkpoint.SEGMENTS_WEIGHTS,
             lines: str | Path = checkpoint.LINES_WEIGHTS, device: str = "auto", runtime: str = "auto") -> NumberReader:
        """The digit classifier with the segment and line readers loaded beside it (the shipped
        ones unless told otherwise), on `device`, run by `runtime` (see `app.core.runtime`)."""
        return cls(digits, Classifier(segments, device, runtime), LineReader(lines, device, runtime))

    def digits(self, fields: np.ndarray) -> np.ndarray:
        return self.classifier.probabilities(fields)

    def wholeness(self, fields: np.ndarray) -> np.ndarray:
        return 1 - self.segments.probabilities(fields)[:, self.junk]

    def read_line(self, line: np.ndarray) -> LineReading:
        return self.lines.read(line)
