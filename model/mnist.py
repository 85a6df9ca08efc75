"""MNIST in its original IDX format: find it, download it if need be, verify it, load it.

Files are accepted gzip-compressed or raw. Checksums are taken over the decompressed
bytes, so a re-compressed copy of the real data is as good as the published one.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DEFAULT_DIR = Path("data/mnist")

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# IDX type codes (third byte of the magic number) and the NumPy dtypes they stand for.
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class MnistError(RuntimeError):
    """A problem with the MNIST files that the user can fix; the message says how."""


@dataclass(frozen=True)
class IdxFile:
    name: str
    md5: str  # of the decompressed file


FILES = {
    "train": (
        IdxFile("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"),
        IdxFile("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624"),
    ),
    "test": (
        IdxFile("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
        IdxFile("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
    ),
}


def resolve_data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The MNIST folder: an explicit path, else $MNIST_DIR, else data/mnist."""
    return Path(path or os.environ.get("MNIST_DIR") or DEFAULT_DIR)


def parse_idx(data: bytes, source: str = "IDX data") -> np.ndarray:
    """Decode one IDX file, checking its header against its length."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise MnistError(f"{source} is not an IDX file (bad magic number {data[:4].hex()})")
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise MnistError(f"{source} is truncated: its header is incomplete")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "too long"
        raise MnistError(
            f"{source} is {kind}: header says {shape} ({expected} bytes), file has {len(data)}"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape)


def encode_idx(array: np.ndarray) -> bytes:
    """One IDX file holding `array` (uint8): the format MNIST itself is published in."""
    array = np.ascontiguousarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.tobytes()


def read_idx(path: Path, md5: str | None = None) -> np.ndarray:
    """Read an IDX file, raw or .gz, optionally checking the MD5 of its decompressed bytes."""
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error) as exc:
        raise MnistError(f"{path} cannot be read or decompressed ({exc}); delete it and retry") from exc
    if md5 is not None and hashlib.md5(data).hexdigest() != md5:
        raise MnistError(f"{path} has the wrong checksum (expected MD5 {md5}); delete it and retry")
    return parse_idx(data, str(path))


def _find(data_dir: Path, name: str) -> Path | None:
    for candidate in (data_dir / name, data_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def download(data_dir: Path, names: list[str], mirrors: tuple[str, ...] | None = None) -> None:
    """Fetch `names` (.gz) into `data_dir`, trying each mirror in turn."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        errors = []
        for mirror in mirrors or MIRRORS:
            url = f"{mirror}{name}.gz"
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    with tempfile.NamedTemporaryFile(dir=data_dir, delete=False, suffix=".tmp") as tmp:
                        shutil.copyfileobj(response, tmp)
                os.replace(tmp.name, data_dir / f"{name}.gz")
                print(f"downloaded {url}")
                break
            except (urllib.error.URLError, OSError) as exc:
                errors.append(f"  {url}: {getattr(exc, 'reason', exc)}")
        else:
            raise MnistError(
                f"MNIST is not in {data_dir} and could not be downloaded:\n"
                + "\n".join(errors)
                + f"\nPut the four *-ubyte.gz files in {data_dir}, or point --data-dir or "
                "MNIST_DIR at a folder that has them."
            )


def load(split: str, data_dir: str | os.PathLike[str] | None = None, *, fetch: bool = True
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 28, 28) and labels (N,) of the "train" or "test" split, as uint8 tensors.

    Missing files are downloaded when `fetch` is true; every file's checksum is verified.
    """
    directory = resolve_data_dir(data_dir)
    files = FILES[split]
    missing = [f.name for f in files if _find(directory, f.name) is None]
    if missing:
        if not fetch:
            raise MnistError(f"MNIST files missing from {directory}: {', '.join(missing)}")
        download(directory, missing)
    images, labels = (read_idx(_find(directory, f.name), f.md5) for f in files)
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.copy())
