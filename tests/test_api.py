"""The JSON API through Flask's test client: every input form, every error case."""

import base64
import io

import pytest
from PIL import Image

from tests.drawing import draw, encode

PNG = encode(draw(3))
B64 = base64.b64encode(PNG).decode()


def check_prediction(body, digit):
    assert body["digit"] == digit
    assert len(body["probabilities"]) == 10
    assert abs(sum(body["probabilities"]) - 1) < 1e-4
    assert body["confidence"] == max(body["probabilities"])
    assert body["preview"].startswith("data:image/png;base64,")
    preview = Image.open(io.BytesIO(base64.b64decode(body["preview"].split(",", 1)[1])))
    assert preview.size == (28, 28)
    assert set(body["model"]) == {"name", "version"}


@pytest.mark.parametrize("send", [
    lambda c: c.post("/predict", json={"image": "data:image/png;base64," + B64}),
    lambda c: c.post("/predict", json={"image": B64}),
    lambda c: c.post("/predict", json={"image": "\n".join(B64[i:i + 76] for i in range(0, len(B64), 76))}),
    lambda c: c.post("/predict", data={"image": (io.BytesIO(PNG), "three.png")}),
    lambda c: c.post("/predict", data=PNG, content_type="image/png"),
    lambda c: c.post("/predict", data=PNG, content_type="image/jpeg"),  # the bytes decide the format
], ids=["data-url", "bare-base64", "wrapped-base64", "multipart", "raw-png", "mislabelled"])
def test_predict_accepts_every_form(client, send):
    response = send(client)
    assert response.status_code == 200, response.json
    check_prediction(response.json, 3)


def test_blank_canvas_is_422_no_digit(client):
    response = client.post("/predict", data=encode(Image.new("RGBA", (280, 280))), content_type="image/png")
    assert response.status_code == 422
    assert response.json == {"error": "no digit found"}


ERRORS = {
    "bad json": (dict(data=b"{not json", content_type="application/json"), 400, "not valid JSON"),
    "json array": (dict(json=[1, 2]), 400, "must be an object"),
    "missing field": (dict(json={"img": B64}), 400, "missing field 'image'"),
    "field not a string": (dict(json={"image": 42}), 400, "must be a string"),
    "bad base64": (dict(json={"image": "not*base64!"}), 400, "not valid base64"),
    "empty base64": (dict(json={"image": ""}), 400, "empty"),
    "data url without base64": (dict(json={"image": "data:image/png,abc"}), 400, "without ';base64'"),
    "base64 of text": (dict(json={"image": base64.b64encode(b"hello").decode()}), 415, "not an image"),
    "missing multipart field": (dict(data={"file": (io.BytesIO(PNG), "x.png")}), 400, "missing file field"),
    "empty upload": (dict(data={"image": (io.BytesIO(b""), "x.png")}), 400, "empty"),
    "not an image": (dict(data=b"hello", content_type="image/png"), 415, "not an image"),
    "truncated image": (dict(data=PNG[:200], content_type="image/png"), 400, "truncated|corrupt"),
    "empty body": (dict(data=b"", content_type="image/png"), 400, "empty"),
    "text/plain": (dict(data=b"hello", content_type="text/plain"), 415, "unsupported Content-Type"),
    "no content type": (dict(data=PNG), 415, "unsupported Content-Type"),
    "too many pixels": (dict(data=encode(Image.new("1", (8000, 6000))), content_type="image/png"), 413,
                        "too many pixels|pixels; the limit"),
}


@pytest.mark.parametrize("name", ERRORS)
def test_predict_errors_are_json_4xx(client, name):
    kwargs, status, message = ERRORS[name]
    response = client.post("/predict", **kwargs)
    assert response.status_code == status, response.data
    assert response.is_json and set(response.json) == {"error"}
    assert __import__("re").search(message, response.json["error"]), response.json


def test_body_over_the_limit_is_413(app):
    client = app.test_client()
    app.config["MAX_CONTENT_LENGTH"] = 1000
    try:
        response = client.post("/predict", data=PNG, content_type="image/png")
    finally:
        app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024
    assert response.status_code == 413 and "larger than the limit" in response.json["error"]


def test_wrong_method_and_unknown_route_are_json(client):
    for response, status in ((client.get("/predict"), 405), (client.get("/no/such/thing"), 404)):
        assert response.status_code == status and response.is_json and "error" in response.json


def test_batch_json_keeps_order_and_isolates_bad_items(client):
    images = [base64.b64encode(encode(draw(d))).decode() for d in range(10)]
    images.insert(4, "%%%")
    images.append(base64.b64encode(encode(Image.new("RGBA", (50, 50)))).decode())
    response = client.post("/predict/batch", json={"images": images})
    assert response.status_code == 200
    predictions = response.json["predictions"]
    assert len(predictions) == 12
    assert predictions[4] == {"error": "'images[4]' is not valid base64", "status": 400}
    assert predictions[11] == {"error": "no digit found", "status": 422}
    for digit, body in enumerate(predictions[:4] + predictions[5:11]):
        check_prediction(body, digit)


def test_batch_multipart(client):
    files = [(io.BytesIO(encode(draw(d))), f"{d}.png") for d in (1, 7)]
    response = client.post("/predict/batch", data={"image": files})
    assert [p["digit"] for p in response.json["predictions"]] == [1, 7]


@pytest.mark.parametrize("body, status, message", [
    ({"images": []}, 400, "no images"),
    ({"images": "abc"}, 400, "must be a list"),
    ({"image": B64}, 400, "missing field 'images'"),
    ({"images": [B64] * 257}, 413, "too many images"),
])
def test_batch_errors(client, body, status, message):
    response = client.post("/predict/batch", json=body)
    assert response.status_code == status and message in response.json["error"]


def test_batch_item_that_is_not_a_string_is_a_malformed_request(client):
    response = client.post("/predict/batch", json={"images": [B64, None]})
    assert response.status_code == 400 and "'images[1]' must be a string" in response.json["error"]


def test_batch_item_that_is_not_an_image_is_one_bad_item(client):
    response = client.post("/predict/batch", json={"images": [B64, ""]})
    assert response.status_code == 200 and response.json["predictions"][1]["status"] == 400


def test_health_and_model_endpoints(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["status"] == "ready"
    meta = client.get("/api/model").json
    assert meta["test_accuracy"] >= 0.996 and len(meta["confusion_matrix"]) == 10 and meta["history"]


def test_page_is_served(client):
    response = client.get("/")
    assert response.status_code == 200 and b"<canvas" in response.data
    assert client.get("/static/js/main.js").status_code == 200
