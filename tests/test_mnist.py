"""The MNIST reader: IDX parsing, checksums, file discovery and the offline message."""

import gzip
import hashlib
import socket
import struct

import numpy as np
import pytest

from model import mnist
from model.mnist import MnistError, parse_idx, read_idx


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture()
def images():
    return np.arange(3 * 28 * 28, dtype=np.uint32).reshape(3, 28, 28).astype(np.uint8)


@pytest.mark.parametrize("compress", [False, True])
def test_reads_raw_and_gzip(tmp_path, images, compress):
    data = idx_bytes(images)
    path = tmp_path / ("x.gz" if compress else "x")
    path.write_bytes(gzip.compress(data) if compress else data)
    out = read_idx(path, hashlib.md5(data).hexdigest())
    assert out.dtype == np.uint8 and out.shape == (3, 28, 28)
    np.testing.assert_array_equal(out, images)


def test_labels_are_one_dimensional():
    assert parse_idx(idx_bytes(np.array([5, 0, 4], np.uint8))).tolist() == [5, 0, 4]


def test_wrong_checksum_is_refused(tmp_path, images):
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(images))
    with pytest.raises(MnistError, match="wrong checksum"):
        read_idx(path, "0" * 32)


def test_truncated_file_says_so(tmp_path, images):
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(images)[:-10])
    with pytest.raises(MnistError, match="truncated"):
        read_idx(path)


def test_truncated_header_says_so():
    with pytest.raises(MnistError, match="truncated"):
        parse_idx(bytes([0, 0, 8, 3, 0, 0]))


def test_bad_magic_says_not_idx():
    with pytest.raises(MnistError, match="not an IDX file"):
        parse_idx(b"PK\x03\x04 a zip file, say")


def test_trailing_garbage_is_refused(images):
    with pytest.raises(MnistError, match="too long"):
        parse_idx(idx_bytes(images) + b"extra")


def test_corrupt_gzip_is_a_clear_error(tmp_path, images):
    path = tmp_path / "x.gz"
    blob = bytearray(gzip.compress(idx_bytes(images)))
    blob[20:40] = b"\xff" * 20
    path.write_bytes(bytes(blob))
    with pytest.raises(MnistError, match="cannot be read or decompressed|truncated|checksum"):
        read_idx(path)


def test_truncated_gzip_is_a_clear_error(tmp_path, images):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(images))[:-30])
    with pytest.raises(MnistError, match="cannot be read or decompressed"):
        read_idx(path)


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path))
    assert mnist.resolve_data_dir("explicit") == mnist.Path("explicit")
    assert mnist.resolve_data_dir(None) == tmp_path
    monkeypatch.delenv("MNIST_DIR")
    assert mnist.resolve_data_dir(None) == mnist.DEFAULT_DIR


def test_offline_download_says_what_to_do(tmp_path):
    # A port that refuses connections stands in for a machine without internet.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mirrors = (f"http://127.0.0.1:{port}/a/", f"http://127.0.0.1:{port}/b/")
    with pytest.raises(MnistError) as info:
        mnist.download(tmp_path, ["train-images-idx3-ubyte"], mirrors)
    message = str(info.value)
    assert "could not be downloaded" in message and "--data-dir" in message and "MNIST_DIR" in message
    assert message.count("127.0.0.1") == 2  # every mirror tried, each named
    assert not list(tmp_path.glob("*.gz"))


def test_missing_files_without_fetch(tmp_path):
    with pytest.raises(MnistError, match="missing"):
        mnist.load("test", tmp_path, fetch=False)


def test_real_mnist_loads_and_verifies(mnist_dir):
    images, labels = mnist.load("test", mnist_dir, fetch=False)
    assert images.shape == (10000, 28, 28) and images.dtype.is_floating_point is False
    assert labels.shape == (10000,) and int(labels.max()) == 9
