"""The networks run by ONNX Runtime on the CPU answer as PyTorch does, and PyTorch stays one
setting away (and the runtime on CUDA)."""

from __future__ import annotations

import numpy as np
import pytest

from app import create_app
from app.core import segment
from app.core.classifier import Classifier, LineReader, NumberReader
from app.core.preprocess import decode, ink, preprocess, to_line
from model import checkpoint
from tests.drawing import draw, encode, picture

WHITE = (255, 255, 255, 255)


@pytest.fixture(scope="module")
def fields() -> np.ndarray:
    return np.stack([preprocess(encode(draw(d % 10, angle=0.1 * (d - 6), brush=6 + d))) for d in range(12)])


@pytest.mark.parametrize("weights", [checkpoint.DEFAULT_WEIGHTS, checkpoint.SEGMENTS_WEIGHTS])
def test_onnx_runtime_gives_pytorchs_probabilities(weights, fields):
    served, reference = Classifier(weights, "cpu"), Classifier(weights, "cpu", runtime="torch")
    assert (served.runner.runtime, reference.runner.runtime) == ("onnxruntime", "torch")
    for batch in (fields[:1], fields):  # one drawing, and a number's worth of pieces
        np.testing.assert_allclose(served.probabilities(batch), reference.probabilities(batch), atol=1e-5)
    assert served.probabilities(fields[:0]).shape == (0, served.net.classifier.out_features)


def test_onnx_runtime_reads_lines_of_any_width_as_pytorch_does():
    served, reference = LineReader(checkpoint.LINES_WEIGHTS, "cpu"), LineReader(checkpoint.LINES_WEIGHTS, "cpu", "torch")
    readings = ["2026", "226", "20026", "7"]
    for digits in ("7", "42", "2026", "31415926"):
        line = to_line(ink(decode(picture(digits, gap=0.1, brush=11, paper=WHITE))))
        a, b = served.read(line), reference.read(line)
        np.testing.assert_allclose(a.log_probs.numpy(), b.log_probs.numpy(), atol=1e-4)
        np.testing.assert_allclose(a.likelihoods(readings), b.likelihoods(readings), rtol=1e-5, atol=1e-3)


def test_a_touching_number_is_read_the_same_by_either_runtime():
    data = picture("2047", gap=-0.12, brush=11, paper=WHITE)
    digits = Classifier(checkpoint.DEFAULT_WEIGHTS, "cpu")
    served = NumberReader.load(digits, device="cpu")
    reference = NumberReader.load(Classifier(checkpoint.DEFAULT_WEIGHTS, "cpu", "torch"), device="cpu", runtime="torch")
    a, b = segment.read_image(data, served, 16), segment.read_image(data, reference, 16)
    assert [d.box for d in a] == [d.box for d in b]
    np.testing.assert_allclose([d.probabilities for d in a], [d.probabilities for d in b], atol=1e-5)


def test_the_app_runs_pytorch_when_told_and_answers_the_same(client):
    torch_client = create_app({"TESTING": True, "RUNTIME": "torch"}).test_client()
    assert client.get("/readyz").json["runtime"] == "onnxruntime"
    assert torch_client.get("/readyz").json["runtime"] == "torch"
    for digit in range(10):
        data = encode(draw(digit, paper=(250, 250, 250, 255)))
        a, b = (c.post("/predict", data=data, content_type="image/png").json for c in (client, torch_client))
        assert a["digit"] == b["digit"] == digit
        np.testing.assert_allclose(a["probabilities"], b["probabilities"], atol=2e-6)


def test_an_unknown_runtime_stops_the_app_with_one_line(capsys):
    with pytest.raises(SystemExit):
        create_app({"TESTING": True, "RUNTIME": "tensorflow"})
    assert "digitpad: cannot start: unknown runtime 'tensorflow': use auto or torch" in capsys.readouterr().err
