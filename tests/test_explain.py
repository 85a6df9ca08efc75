"""Inside the model: /explain's answer is the model's own doing, checked, not only shaped."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from app.core.explain import explain
from tests.drawing import draw, encode

WHITE = (255, 255, 255, 255)
# Integrated Gradients' completeness, as /explain makes sure of it (steps doubled until it holds,
# at most 512): the attributions add up to the logit difference within this.
TOLERANCE = 0.05, 0.1  # relative, plus absolute (app.core.explain.COMPLETENESS and SLACK)


def png_pixels(data_url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


@pytest.fixture(scope="module")
def answers(app):
    client = app.test_client()
    out = {}
    for digit in range(10):
        data = encode(draw(digit, paper=WHITE if digit % 2 else None))
        out[digit] = (client.post("/explain", data=data, content_type="image/png").json,
                      client.post("/predict", data=data, content_type="image/png").json)
    return out


def test_the_answer_is_predicts_answer(answers):
    for digit, (explained, predicted) in answers.items():
        assert explained["digit"] == predicted["digit"] == digit
        assert explained["probabilities"] == predicted["probabilities"]


def test_stages_come_in_order_and_the_last_is_exactly_predicts_preview(answers):
    for explained, predicted in answers.values():
        stages = explained["stages"]
        assert [s["name"] for s in stages] == ["ink", "crop", "stroke", "box", "field"]
        assert all(s["caption"] and s["image"].startswith("data:image/png;base64,") for s in stages)
        assert stages[-1]["image"] == predicted["preview"] == explained["preview"]
        assert png_pixels(stages[-1]["image"]).shape == (28, 28)
        assert max(png_pixels(stages[3]["image"]).shape) == 20  # the 20 px box


def test_the_captions_say_what_happened(app):
    client = app.test_client()
    thin = client.post("/explain", data=encode(draw(1, brush=2)), content_type="image/png").json
    stroke = next(s for s in thin["stages"] if s["name"] == "stroke")["caption"]
    assert "thickened" in stroke and "%" in stroke
    field = thin["stages"][-1]["caption"]
    assert "centre of mass" in field and "px" in field


def test_the_feature_maps_are_the_networks_own(app, answers):
    """The logits recomputed from the feature vector by the last layer's own weights are the
    logits the served probabilities come from."""
    classifier = app.extensions["digitpad.classifier"]
    final = classifier.net.classifier
    for explained, predicted in answers.values():
        features = torch.tensor(explained["features"]["values"])
        assert features.numel() == final.in_features
        logits = (final.weight @ features + final.bias).detach()
        assert torch.allclose(logits, torch.tensor(explained["features"]["logits"]), atol=1e-3)
        served = torch.softmax(logits / classifier.temperature, 0)
        assert np.allclose(served.numpy(), predicted["probabilities"], atol=1e-4)
        shapes = [layer["shape"] for layer in explained["layers"]]
        assert shapes == [[16, 28, 28], [32, 14, 14], [32, 14, 14], [64, 7, 7], [64, 7, 7]]
        assert shapes[-1][0] * 3 * 3 == features.numel()  # after the last 2x2 max-pool
        for layer in explained["layers"]:
            assert layer["caption"] and png_pixels(layer["image"]).ndim == 2


def test_integrated_gradients_add_up_to_the_logit_difference(answers):
    for explained, _ in answers.values():
        targets = explained["attribution"]["targets"]
        assert [t["role"] for t in targets] == ["the answer", "the runner-up"]
        assert targets[0]["digit"] == explained["digit"] != targets[1]["digit"]
        for t in targets:
            total = float(np.sum(t["values"]))
            assert total == pytest.approx(t["sum"], abs=1e-3)
            assert abs(total - t["logit_difference"]) <= TOLERANCE[0] * abs(t["logit_difference"]) + TOLERANCE[1]
            assert png_pixels(t["field"]).shape == (28, 28, 3)
            assert png_pixels(t["drawing"]).shape[2] == 3


def test_the_answers_attribution_is_mostly_for_it(answers):
    for explained, _ in answers.values():
        answer = explained["attribution"]["targets"][0]
        assert answer["logit_difference"] > 0 and answer["sum"] > 0


def test_a_digit_on_the_left_half_gets_attribution_only_there(app):
    classifier = app.extensions["digitpad.classifier"]
    data = encode(draw(4, canvas=(600, 300), box=(40, 40, 220)))
    found = explain(data, classifier)
    width = found.drawing.shape[1]
    for attribution in found.attributions:
        mass = np.abs(attribution.drawing)
        assert mass.sum() > 0
        assert mass[:, width // 2:].sum() == 0, "attribution leaked onto the empty right half"
        assert mass.sum() == pytest.approx(np.abs(attribution.values).sum(), rel=1e-3)


@pytest.mark.parametrize("send", [
    lambda data: dict(data=data, content_type="image/png"),
    lambda data: dict(json={"image": base64.b64encode(data).decode()}),
    lambda data: dict(json={"image": "data:image/png;base64," + base64.b64encode(data).decode()}),
    lambda data: dict(data={"image": (io.BytesIO(data), "d.png")}),
], ids=["raw", "json", "data URL", "multipart"])
def test_every_input_form(client, send):
    response = client.post("/explain", **send(encode(draw(6))))
    assert response.status_code == 200 and response.json["digit"] == 6


@pytest.mark.parametrize("kwargs, status, message", [
    (dict(data=encode(Image.new("RGBA", (200, 200))), content_type="image/png"), 422, "no digit found"),
    (dict(data=b"not an image", content_type="image/png"), 415, "not an image"),
    (dict(data=b"\x89PNG\r\n\x1a\n", content_type="image/png"), 400, "truncated"),
    (dict(json={"nope": 1}), 400, "missing field 'image'"),
    (dict(data=b"x", content_type="text/plain"), 415, "Content-Type"),
])
def test_errors_are_json_4xx(client, kwargs, status, message):
    response = client.post("/explain", **kwargs)
    assert response.status_code == status and message in response.json["error"]
