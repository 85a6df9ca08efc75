"""Inside the model, for one drawing: how preprocessing prepared it, what every convolution
saw, and which pixels pushed the answer towards a digit and which against.

Nothing here is reimplemented: the stages are preprocessing's own (`Trace`), the feature maps
are the served network's own activations (forward hooks), and the attributions are Integrated
Gradients (Captum) of its own logits, from a black field to the drawing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from captum.attr import IntegratedGradients
from PIL import Image
from torch import nn

from app.core.classifier import Classifier
from app.core.preprocess import DEFAULT_MAX_PIXELS, Stage, Trace, decode, ink, to_mnist

# Integrated Gradients by the trapezoid rule. Through ReLUs and max-pools the path integral is of
# a piecewise constant gradient, so the steps are doubled until the attributions add up to the
# logit difference within COMPLETENESS (relative) plus SLACK: 64 are mostly enough.
METHOD = "riemann_trapezoid"
STEPS = (64, 128, 256, 512)
COMPLETENESS = 0.05
SLACK = 0.1   # logit units: for the runner-up the difference itself can be this small
OVERLAY_SIDE = 320  # the drawing with its attribution is shown at most this many pixels a side


@dataclass
class Layer:
    """One convolution stage's activations for this drawing: (channels, height, width)."""

    name: str
    caption: str
    activations: np.ndarray


@dataclass
class Attribution:
    """How much each pixel of the 28x28 field moved one digit's logit, from a black field."""

    digit: int
    values: np.ndarray        # (28, 28), adds up to logit_difference (within `delta`)
    logit_difference: float   # the digit's logit for the drawing minus for a black field
    delta: float              # Captum's convergence delta: sum(values) - logit_difference
    steps: int                # how many steps it took to get there
    drawing: np.ndarray       # (H, W) the values mapped back onto the drawing


@dataclass
class Explanation:
    field: np.ndarray
    stages: list[Stage]
    layers: list[Layer]
    features: np.ndarray      # what the final linear layer reads
    logits: np.ndarray        # recomputed from the features by the final layer's own weights
    probabilities: np.ndarray  # the classifier's, as /predict gives them
    attributions: list[Attribution]
    drawing: np.ndarray       # the drawing's ink map, for the overlays


def explain(data: bytes, classifier: Classifier, max_pixels: int = DEFAULT_MAX_PIXELS) -> Explanation:
    """Everything the model did with one drawing; ImageError for what /predict would refuse."""
    image = decode(data, max_pixels)
    trace = Trace()
    ink_map = ink(image, trace)
    field = to_mnist(ink_map, trace)
    net = classifier.net
    x = torch.from_numpy(field)[None, None].to(classifier.device).contiguous(memory_format=torch.channels_last)

    layers, features, served_logits = _activations(net, x)
    final = net.classifier
    with torch.no_grad():
        logits = (final(torch.from_numpy(features)[None].to(classifier.device))[0]).float().cpu().numpy()
        black_logits = net(torch.zeros_like(x))[0].float().cpu().numpy()
    probabilities = classifier.probabilities(field[None])[0]  # exactly what /predict answers

    # The answer, and the runner-up ("why not a 9?"), in one batch; more steps until the
    # attributions add up to the logit difference (completeness), as they must.
    targets = [int(d) for d in np.argsort(-probabilities)[:2]]
    differences = (served_logits - black_logits)[targets]
    both = x.float().repeat(2, 1, 1, 1)
    black = torch.zeros_like(both)
    ig = IntegratedGradients(net)
    for steps in STEPS:
        values, deltas = ig.attribute(both, baselines=black, target=targets, n_steps=steps, method=METHOD,
                                      return_convergence_delta=True)
        if all(abs(float(d)) <= COMPLETENESS * abs(float(t)) + SLACK for d, t in zip(deltas, differences)):
            break
    attributions = []
    for n, digit in enumerate(targets):
        v = values[n, 0].detach().cpu().numpy()
        attributions.append(Attribution(digit, v, float(differences[n]), float(deltas[n]), steps,
                                        _onto_drawing(v, trace, ink_map.shape)))
    return Explanation(field, trace.stages, layers, features, logits, probabilities, attributions, ink_map)


def _activations(net: nn.Module, x: torch.Tensor) -> tuple[list[Layer], np.ndarray, np.ndarray]:
    """Every convolution's output after its ReLU, the vector the final linear layer reads, and
    the logits it makes of it, from one forward pass."""
    captured: list[tuple[str, torch.Tensor]] = []
    hooks = []
    convolutions = [m for m in net.features if isinstance(m, nn.Conv2d)]
    for n, relu in enumerate(m for m in net.features if isinstance(m, nn.ReLU)):
        hooks.append(relu.register_forward_hook(
            lambda module, inputs, output, n=n: captured.append((f"conv{n + 1}", output.detach()))))
    read: list[torch.Tensor] = []
    hooks.append(net.classifier.register_forward_pre_hook(lambda module, inputs: read.append(inputs[0].detach())))
    try:
        with torch.no_grad():
            logits = net(x)[0].float().cpu().numpy()
    finally:
        for hook in hooks:
            hook.remove()
    layers = []
    for (name, output), conv in zip(captured, convolutions):
        channels, height, width = output.shape[1:]
        layers.append(Layer(name, f"{channels} filters of {conv.kernel_size[0]}×{conv.kernel_size[1]} px, each a "
                                  f"{height}×{width} map of where it found its pattern", output[0].float().cpu().numpy()))
    return layers, read[0][0].float().cpu().numpy(), logits


def _onto_drawing(values: np.ndarray, trace: Trace, shape: tuple[int, int]) -> np.ndarray:
    """The field's attributions put back where those pixels came from in the drawing's ink map:
    each field pixel's share spread evenly over the patch of the drawing it was made from, so
    the total is kept."""
    out = np.zeros(shape, np.float32)
    top, left, height, width = trace.placed
    y0, x0, crop_h, crop_w = trace.crop
    digit = values[top:top + height, left:left + width].astype(np.float32)
    rows = np.diff(np.round(np.linspace(0, crop_h, height + 1)).astype(int))
    cols = np.diff(np.round(np.linspace(0, crop_w, width + 1)).astype(int))
    area = np.maximum(np.outer(rows, cols), 1)
    out[y0:y0 + crop_h, x0:x0 + crop_w] = np.repeat(np.repeat(digit / area, rows, axis=0), cols, axis=1)
    return out


# --- pictures


def mosaic(activations: np.ndarray) -> np.ndarray:
    """(C, H, W) feature maps as one grey picture: a grid of maps, one pixel apart, all on one
    scale so that strong and weak filters can be compared."""
    channels, height, width = activations.shape
    columns = int(np.ceil(np.sqrt(channels)))
    rows = int(np.ceil(channels / columns))
    out = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1), 0.15, np.float32)
    peak = max(float(activations.max()), 1e-6)
    for c in range(channels):
        r, k = divmod(c, columns)
        out[r * (height + 1):r * (height + 1) + height, k * (width + 1):k * (width + 1) + width] = activations[c] / peak
    return out


_LEVELS = (np.arange(255, dtype=np.float32) - 127) / 127
_STRENGTH = np.abs(_LEVELS)
_PALETTE = np.where(_LEVELS[:, None] >= 0, np.array([1.0, 0.55, 0.1], np.float32),  # orange: towards the digit
                    np.array([0.2, 0.55, 1.0], np.float32)).astype(np.float32)      # blue: away from it


def signed_png(values: np.ndarray, under: np.ndarray | None = None, side: int | None = None) -> bytes:
    """Positive values orange, negative blue, on one symmetric scale; over a faint grey copy of
    `under` when given (the drawing), at most `side` pixels a side."""
    if side:  # colour the small copy, not the full-size one
        values = fit(values, side)
        under = None if under is None else fit(under, side)
    scale = max(float(np.abs(values).max()), 1e-12)
    # 255 shades from most against (0) through none (127) to most towards (254), by table.
    shade = np.clip(np.round(values * (127 / scale) + 127), 0, 254).astype(np.intp)
    colour, strength = _PALETTE[shade], _STRENGTH[shade][..., None]
    base = np.zeros((1, 1, 3), np.float32) if under is None else (0.35 * under.astype(np.float32))[..., None]
    rgb = base + (colour - base) * strength
    return _png(Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB"))


def fit(image: np.ndarray, side: int = OVERLAY_SIDE) -> np.ndarray:
    """A picture no larger than the page shows it (the ink map can be 640 px), area-averaged."""
    height, width = image.shape[:2]
    if max(height, width) <= side:
        return image
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()
