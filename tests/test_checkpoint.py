"""Saving and loading models: round trip, and refusal of anything that is not ours."""

import json
import pickle

import pytest
import torch

from model import checkpoint
from model.checkpoint import ModelError
from model.net import DigitNet, LineNet


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    net = DigitNet()
    path = tmp_path / "m.safetensors"
    checkpoint.save(net, {"name": "test", "version": "1"}, path)
    return net, path


def test_round_trip_gives_the_same_outputs(saved):
    net, path = saved
    loaded, meta = checkpoint.load(path)
    x = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(loaded(x), net.eval()(x))
    assert meta["name"] == "test" and meta["architecture"]["channels"] == list(net.channels)
    assert not list(path.parent.glob("*.tmp")), "temporary files must not be left behind"


def test_tampered_weights_are_refused(saved):
    _, path = saved
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ModelError, match="does not match the checksum"):
        checkpoint.load(path)


def test_a_pickle_is_never_unpickled(saved, tmp_path):
    _, path = saved
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path.write_bytes(pickle.dumps(Exploit()))
    meta = json.loads(path.with_suffix(".json").read_text())
    import hashlib
    meta["weights_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()  # even with a matching hash
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError):
        checkpoint.load(path)
    assert not marker.exists()


def test_weights_for_another_architecture_are_refused(saved):
    _, path = saved
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["architecture"]["channels"] = [8, 8, 8, 8, 8]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="does not fit the architecture"):
        checkpoint.load(path)


def test_a_line_reader_round_trips_and_a_digit_model_is_not_taken_for_one(tmp_path):
    torch.manual_seed(0)
    net = LineNet().eval()
    path = tmp_path / "lines.safetensors"
    checkpoint.save(net, {"name": "lines", "version": "1"}, path)
    loaded, meta = checkpoint.load(path)
    x = torch.rand(2, 1, 28, 100)
    assert isinstance(loaded, LineNet) and loaded(x).shape == (2, 11, 25)
    torch.testing.assert_close(loaded(x), net(x))
    meta["architecture"]["name"] = "DigitNet"  # a line reader's weights under a digit model's name
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="does not fit the architecture"):
        checkpoint.load(path)
    meta["architecture"]["name"] = "SomethingElse"
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="does not fit the architecture"):
        checkpoint.load(path)


@pytest.mark.parametrize("content", ["not json", "[]", '{"format": "other"}'])
def test_bad_metadata_is_refused(saved, content):
    _, path = saved
    path.with_suffix(".json").write_text(content)
    with pytest.raises(ModelError):
        checkpoint.load(path)


def test_missing_model_names_the_file(tmp_path):
    with pytest.raises(ModelError, match="not found.*nothing.safetensors"):
        checkpoint.load(tmp_path / "nothing.safetensors")
