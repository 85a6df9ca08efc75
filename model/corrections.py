"""Corrections as a dataset: the fields people corrected and the labels they gave.

Two export formats, both readable without digitpad: an .npz with `images` (N, 28, 28) uint8
and `labels` (N,) uint8, and a .zip of the two MNIST-format IDX files. Training reads either,
or the corrections store itself given its database URL.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.mnist import MnistError, encode_idx, parse_idx

IMAGES_IDX = "corrections-images-idx3-ubyte"
LABELS_IDX = "corrections-labels-idx1-ubyte"
FORMATS = ("npz", "idx")


class CorrectionsError(ValueError):
    """A corrections file that cannot be read; the message says what is wrong with it."""


@dataclass(frozen=True)
class Corrections:
    images: np.ndarray  # (N, 28, 28) uint8, white ink on black: the fields the model saw
    labels: np.ndarray  # (N,) uint8: what the people who drew them said they are

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.shape[1:] != (28, 28) or self.images.dtype != np.uint8:
            raise CorrectionsError(f"images must be (N, 28, 28) uint8, not {self.images.shape} {self.images.dtype}")
        if self.labels.shape != (len(self.images),) or self.labels.dtype != np.uint8:
            raise CorrectionsError(f"labels must be ({len(self.images)},) uint8, not {self.labels.shape} "
                                   f"{self.labels.dtype}")
        if self.labels.size and self.labels.max() > 9:
            raise CorrectionsError(f"labels must be digits 0-9; found {int(self.labels.max())}")

    def __len__(self) -> int:
        return len(self.labels)

    def split(self, every: int = 5) -> tuple[Corrections, Corrections]:
        """(kept for training, held out): every `every`-th correction is held out, the same way each time."""
        held = np.arange(len(self)) % every == every - 1
        return (Corrections(self.images[~held], self.labels[~held]),
                Corrections(self.images[held], self.labels[held]))


def encode(corrections: Corrections, fmt: str) -> bytes:
    """The export file's bytes in `fmt` ("npz" or "idx")."""
    buffer = io.BytesIO()
    if fmt == "npz":
        np.savez_compressed(buffer, images=corrections.images, labels=corrections.labels)
    elif fmt == "idx":
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(IMAGES_IDX, encode_idx(corrections.images))
            archive.writestr(LABELS_IDX, encode_idx(corrections.labels))
    else:
        raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    return buffer.getvalue()


def decode(data: bytes, source: str = "corrections") -> Corrections:
    """An export file's bytes (npz or IDX zip, told apart by their content) -> Corrections."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if {"images.npy", "labels.npy"} <= names:
                with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                    return Corrections(npz["images"], npz["labels"])
            if {IMAGES_IDX, LABELS_IDX} <= names:
                return Corrections(parse_idx(archive.read(IMAGES_IDX), IMAGES_IDX).copy(),
                                   parse_idx(archive.read(LABELS_IDX), LABELS_IDX).copy())
    except (zipfile.BadZipFile, MnistError, OSError, ValueError) as exc:
        if isinstance(exc, CorrectionsError):
            raise
        raise CorrectionsError(f"{source} is not a readable corrections export: {exc}") from None
    raise CorrectionsError(f"{source} holds neither images.npy and labels.npy (npz) nor {IMAGES_IDX} and "
                           f"{LABELS_IDX} (idx)")


def load(source: str) -> Corrections:
    """Corrections from an export file (npz or idx) or straight from a store's database URL."""
    if "://" in source:
        from app.core.store import Store  # only training from a live database needs the store

        store = Store(source, create=False)
        try:
            return store.dataset()
        finally:
            store.close()
    path = Path(source)
    try:
        return decode(path.read_bytes(), str(path))
    except OSError as exc:
        raise CorrectionsError(f"cannot read {path}: {exc.strerror or exc}") from None
