"""The digit classifier: a small VGG-style CNN sized for fast training on a laptop CPU."""

from __future__ import annotations

import torch
from torch import nn

# MNIST pixel statistics; the network normalises its own input, so callers pass [0, 1] images.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
# The shipped networks' widths (the training scripts' --channels); their checkpoints record their
# own, so a model trained wider or narrower loads all the same.
DIGIT_CHANNELS = (16, 32, 32, 64, 64)    # train.py: the digit classifier
SEGMENT_CHANNELS = (8, 16, 16, 32, 32)   # train_segments.py: a DigitNet at half the width, 11 classes
LINE_CHANNELS = (16, 32, 64, 64)         # train_lines.py: the line reader


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class DigitNet(nn.Module):
    """28x28 grey image (white ink on black, values in [0, 1]) -> 10 digit logits (or `classes`:
    the segment reader adds an eleventh, "not one whole digit").

    Three stages at 28, 14 and 7 px, each ending in a 2x2 max-pool: most of the width
    sits at the lower resolutions, where it is cheap.
    """

    def __init__(self, channels: tuple[int, ...] = DIGIT_CHANNELS, classes: int = 10) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = channels
        self.channels = tuple(channels)
        self.classes = classes
        self.register_buffer("mean", torch.tensor(MNIST_MEAN), persistent=False)
        self.register_buffer("std", torch.tensor(MNIST_STD), persistent=False)
        self.features = nn.Sequential(
            *_conv_bn_relu(1, c1), nn.MaxPool2d(2),
            *_conv_bn_relu(c1, c2), *_conv_bn_relu(c2, c3), nn.MaxPool2d(2),
            *_conv_bn_relu(c3, c4), *_conv_bn_relu(c4, c5), nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(c5 * 3 * 3, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        return self.classifier(self.features(x).flatten(1))


class LineNet(nn.Module):
    """A line of digits, 28 px high and any width (white ink on black, values in [0, 1]) ->
    logits over "no digit here" (CTC's blank) and the ten digits, for every 4 px of its width.

    Read with CTC, it needs no cuts: it weighs how well a whole reading ("17", "157") fits the
    ink, which is what a cutter alone cannot tell when digits run into each other. Convolutions
    pool the height away (28 -> 3 px); two 1-D convolutions along the width see about two digits.
    """

    def __init__(self, channels: tuple[int, ...] = LINE_CHANNELS, classes: int = 11) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels
        self.channels = tuple(channels)
        self.classes = classes
        self.register_buffer("mean", torch.tensor(MNIST_MEAN), persistent=False)
        self.register_buffer("std", torch.tensor(MNIST_STD), persistent=False)
        self.features = nn.Sequential(
            *_conv_bn_relu(1, c1), nn.MaxPool2d(2),
            *_conv_bn_relu(c1, c2), nn.MaxPool2d(2),
            *_conv_bn_relu(c2, c3), *_conv_bn_relu(c3, c4), nn.MaxPool2d((2, 1)),
        )
        self.sequence = nn.Sequential(nn.Conv1d(c4 * 3, 128, 5, padding=2), nn.ReLU(inplace=True),
                                      nn.Conv1d(128, classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, W) -> (N, classes, W // 4)."""
        features = self.features((x - self.mean) / self.std)
        return self.sequence(features.flatten(1, 2))
