"""The textbook recipe digitpad is measured against: the course-notes CNN, trained for 5 epochs
of plain SGD, fed by resizing the whole canvas to 28x28. Kept only as a reference."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

CACHE = Path(__file__).with_name(".cache") / "textbook.safetensors"


class TextbookNet(nn.Module):
    """conv 1->16, pool, conv 16->32, pool, linear 1568->16, ReLU, linear 16->10."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(1568, 16), nn.ReLU(), nn.Linear(16, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def train(train_x, train_y, test_x, test_y, epochs: int = 5, on_epoch=None, seed: int = 0) -> TextbookNet:
    """SGD, lr 0.2, batch 64, no augmentation; inputs are uint8 tensors (N, 28, 28)."""
    torch.manual_seed(seed)
    net = TextbookNet()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.2)
    x = train_x.unsqueeze(1).float() / 255
    y = train_y.long()
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = order[i:i + 64]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if on_epoch:
            on_epoch(epoch, time.perf_counter() - started, accuracy(net, test_x, test_y))
    return net


@torch.inference_mode()
def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    net.eval()
    predicted = torch.cat([net(images[i:i + 1000].unsqueeze(1).float() / 255).argmax(1)
                           for i in range(0, len(images), 1000)])
    net.train()
    return (predicted == labels.long()).float().mean().item()


def load_or_train(mnist_dir: str | None = None) -> TextbookNet:
    """The textbook model, trained once and cached in bench/.cache."""
    net = TextbookNet()
    if CACHE.exists():
        net.load_state_dict(load_file(CACHE))
        return net.eval()
    from model import mnist

    train_x, train_y = mnist.load("train", mnist_dir)
    test_x, test_y = mnist.load("test", mnist_dir)
    net = train(train_x, train_y, test_x, test_y)
    CACHE.parent.mkdir(exist_ok=True)
    save_file(net.state_dict(), CACHE)
    return net.eval()


def naive_preprocess(data: bytes) -> np.ndarray:
    """What the tutorials do: grey, whole canvas to 28x28, invert (canvases are black on white)."""
    image = Image.open(io.BytesIO(data)).convert("L").resize((28, 28))
    return (255 - np.asarray(image, dtype=np.float32)) / 255
