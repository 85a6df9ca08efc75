"""Saving and loading the model: safetensors weights plus a JSON metadata file beside them.

Loading never unpickles anything. The metadata records the SHA-256 of the weights, so a
file that was swapped, truncated or edited is refused instead of silently mispredicting.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from model.net import DigitNet, LineNet

DEFAULT_WEIGHTS = Path(__file__).with_name("digitpad.safetensors")
SEGMENTS_WEIGHTS = Path(__file__).with_name("segments.safetensors")  # the segment reader, for numbers
LINES_WEIGHTS = Path(__file__).with_name("lines.safetensors")  # the line reader, for numbers
ARCHITECTURES = {"DigitNet": DigitNet, "LineNet": LineNet}
FORMAT = "digitpad/1"


class ModelError(RuntimeError):
    """The model files are missing, tampered with or not a digitpad model."""


def metadata_path(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as tmp:
        tmp.write(data)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.chmod(tmp.name, 0o644)  # temporary files start private; a model is meant to be read
    os.replace(tmp.name, path)


def save(net: DigitNet | LineNet, metadata: dict[str, Any], weights: Path = DEFAULT_WEIGHTS) -> dict[str, Any]:
    """Write weights, then the metadata that vouches for them; returns the metadata written."""
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    blob = save_safetensors(state)
    metadata = {
        **metadata,
        "format": FORMAT,
        "architecture": {"name": type(net).__name__, "channels": list(net.channels), "classes": net.classes},
        "weights_file": Path(weights).name,
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "weights_bytes": len(blob),
    }
    _write_atomically(Path(weights), blob)
    _write_atomically(metadata_path(weights), (json.dumps(metadata, indent=2) + "\n").encode())
    return metadata


def load(weights: Path = DEFAULT_WEIGHTS,
         device: str | torch.device = "cpu") -> tuple[DigitNet | LineNet, dict[str, Any]]:
    """The network in eval mode on `device`, and its metadata; ModelError if anything is off."""
    weights = Path(weights)
    meta_file = metadata_path(weights)
    try:
        blob = weights.read_bytes()
        metadata = json.loads(meta_file.read_text())
    except FileNotFoundError as exc:
        raise ModelError(f"model file not found: {exc.filename}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read model metadata {meta_file}: {exc}") from exc
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ModelError(f"{meta_file} is not digitpad model metadata (format {FORMAT!r})")
    if hashlib.sha256(blob).hexdigest() != metadata.get("weights_sha256"):
        raise ModelError(f"{weights} does not match the checksum in {meta_file.name}: "
                         "the weights were modified or belong to another model")
    try:
        architecture = metadata["architecture"]
        kind = ARCHITECTURES[architecture.get("name", "DigitNet")]
        net = kind(tuple(architecture["channels"]), int(architecture.get("classes", 10)))
        net.load_state_dict(load_safetensors(blob), strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, SafetensorError) as exc:
        raise ModelError(f"{weights} does not fit the architecture in {meta_file.name}: {exc}") from exc
    return net.to(device).eval(), metadata
