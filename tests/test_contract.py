"""The OpenAPI description is true: real responses of the real app validate against it."""

import base64
import io
import json
import re

import jsonschema
import pytest
from PIL import Image

from app.web import api
from tests.drawing import draw, encode

SPEC = json.loads(api.OPENAPI)
B64 = base64.b64encode(encode(draw(6))).decode()


def validate(path: str, method: str, response) -> None:
    operation = SPEC["paths"][path][method]
    declared = operation["responses"].get(str(response.status_code))
    assert declared, f"{method.upper()} {path} answered {response.status_code}, which the spec does not declare"
    if "content" not in declared:  # 204: nothing
        assert response.get_data() == b""
        return
    media = response.mimetype
    content = declared["content"]
    assert media in content, f"{media} not declared for {response.status_code}"
    schema = {**content[media]["schema"], "components": SPEC["components"]}
    if schema.get("format") == "binary":  # a file: its bytes are checked where it is read
        return
    body = response.get_json() if media == "application/json" else response.get_data(as_text=True)
    jsonschema.Draft202012Validator(schema).validate(body)


def test_spec_is_valid_and_covers_every_route(app):
    assert SPEC["openapi"].startswith("3.")
    # Flask's <int:name> is OpenAPI's {name}.
    routes = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule) for rule in app.url_map.iter_rules()
              if rule.endpoint != "static"} - {"/", "/admin/corrections"}  # pages, not API
    assert routes == set(SPEC["paths"]), routes ^ set(SPEC["paths"])


def test_served_at_openapi_json(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.get_json() == SPEC


CASES = [
    ("/predict", "post", dict(json={"image": B64})),
    ("/predict", "post", dict(data={"image": (io.BytesIO(encode(draw(1))), "x.png")})),
    ("/predict", "post", dict(data=encode(draw(2)), content_type="image/png")),
    ("/predict", "post", dict(data=encode(Image.new("RGBA", (99, 99))), content_type="image/png")),
    ("/predict", "post", dict(json={"nope": 1})),
    ("/predict", "post", dict(data=b"x", content_type="text/csv")),
    ("/predict", "post", dict(data=b"x", content_type="image/png")),
    ("/predict/number", "post", dict(json={"image": B64})),
    ("/predict/number", "post", dict(data=encode(draw(2)), content_type="image/png")),
    ("/predict/number", "post", dict(json={"canvas": {"width": 280, "height": 280}, "strokes": [[[100, 50, 0], [100, 230, 90]]]})),
    ("/predict/number", "post", dict(json={"canvas": {"width": 280}, "strokes": [[[1, 2]]]})),
    ("/predict/number", "post", dict(data=encode(Image.new("RGBA", (99, 99))), content_type="image/png")),
    ("/explain", "post", dict(json={"image": B64})),
    ("/explain", "post", dict(data=encode(draw(3)), content_type="image/png")),
    ("/explain", "post", dict(data=encode(Image.new("RGBA", (99, 99))), content_type="image/png")),
    ("/explain", "post", dict(data=b"x", content_type="text/csv")),
    ("/predict/batch", "post", dict(json={"images": [B64, "???", B64]})),
    ("/predict/batch", "post", dict(json={"images": [B64] * 300})),
    ("/predict/batch", "post", dict(data=b"[]", content_type="image/png")),
    ("/api/model", "get", {}),
    ("/healthz", "get", {}),
    ("/readyz", "get", {}),
    ("/metrics", "get", {}),
]


@pytest.mark.parametrize("path, method, kwargs", CASES)
def test_responses_match_the_spec(client, path, method, kwargs):
    response = getattr(client, method)(path, **kwargs)
    validate(path, method, response)


TOKEN = {"Authorization": "Bearer contract"}
CORRECTIONS = [
    ("/api/corrections", "post", dict(json={"image": B64, "label": 5, "predicted": 6})),
    ("/api/corrections", "post", dict(json={"image": B64, "label": 5, "predicted": 6})),  # again: 200
    ("/api/corrections", "post", dict(json={"image": B64, "label": 11})),
    ("/api/corrections", "post", dict(data=b"x", content_type="image/png")),
    ("/api/corrections", "post", dict(json={"image": base64.b64encode(encode(Image.new("RGBA", (9, 9)))).decode(),
                                            "label": 1})),
    ("/api/corrections", "post", dict(json={"image": B64, "label": 4})),  # over the cap of 1: 507
    ("/api/corrections", "post", dict(json={"image": B64, "label": 3})),  # over the rate limit: 429
    ("/api/corrections", "get", dict(headers=TOKEN)),
    ("/api/corrections", "get", dict(headers=TOKEN, query_string={"limit": 1000})),
    ("/api/corrections", "get", {}),
    ("/api/corrections/export", "get", dict(headers=TOKEN)),
    ("/api/corrections/export", "get", dict(headers=TOKEN, query_string={"format": "idx"})),
    ("/api/corrections/export", "get", dict(headers=TOKEN, query_string={"format": "csv"})),
    ("/api/corrections/{correction_id}", "delete", dict(headers=TOKEN)),
    ("/api/corrections/{correction_id}", "delete", dict(headers=TOKEN)),  # gone: 404
    ("/api/corrections/{correction_id}", "delete", {}),
]


def test_corrections_responses_match_the_spec(tmp_path):
    from app import create_app

    client = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/c.sqlite3",
                         "ADMIN_TOKEN": "contract", "MAX_CORRECTIONS": 1, "CORRECTIONS_PER_MINUTE": 6}).test_client()
    statuses = []
    for path, method, kwargs in CORRECTIONS:
        response = getattr(client, method)(path.replace("{correction_id}", "1"), **kwargs)
        validate(path, method, response)
        statuses.append(response.status_code)
    assert statuses == [201, 200, 400, 415, 422, 507, 429, 200, 400, 401, 200, 200, 400, 204, 404, 401]
