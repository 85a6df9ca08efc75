"""Hostile input against a live server: fuzzed bodies, headers and image bytes, bombs, limits,
and the security headers. Every answer is a prediction or a JSON 4xx; the server keeps answering."""

from __future__ import annotations

import base64
import http.client
import json
import os
import struct
import subprocess
import sys
import time
import zlib

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from tests.drawing import draw, encode

PNG = encode(draw(0))
# Fixed examples in CI, so a run is repeatable; DIGITPAD_FUZZ_EXAMPLES=5000 digs deeper, randomly.
_EXAMPLES = int(os.environ.get("DIGITPAD_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_EXAMPLES or 300, derandomize=not _EXAMPLES, deadline=None,
                suppress_health_check=list(HealthCheck))

CONTENT_TYPES = st.sampled_from([
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff", "image/svg+xml", "image/",
    "application/json", "application/json; charset=utf-16", "multipart/form-data",
    "multipart/form-data; boundary=xyz", "text/plain", "application/octet-stream", "", "garbage/\x7f",
    "application/x-www-form-urlencoded",
])


def assert_json_4xx_or_prediction(response: requests.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:200])
    assert response.headers["Content-Type"].startswith("application/json"), response.headers["Content-Type"]
    body = response.json()
    if response.status_code == 200:
        assert "digit" in body or "predictions" in body
    else:
        assert 400 <= response.status_code < 500 and isinstance(body["error"], str) and body["error"]


def post(server, path, **kwargs) -> requests.Response:
    return requests.post(f"{server.url}{path}", timeout=30, **kwargs)


def mutate(data: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    blob = bytearray(data)
    for position, value in flips:
        blob[position % len(blob)] = value
    return bytes(blob[:cut] if cut is not None else blob)


@FUZZ
@given(body=st.binary(max_size=2048), content_type=CONTENT_TYPES, path=st.sampled_from(["/predict", "/predict/batch"]))
def test_fuzz_bodies_and_content_types(server, body, content_type, path):
    assert_json_4xx_or_prediction(post(server, path, data=body, headers={"Content-Type": content_type}))


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=12),
       cut=st.none() | st.integers(0, len(PNG)), fmt=st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "WEBP"]))
def test_fuzz_image_bytes(server, flips, cut, fmt):
    image = draw(4, canvas=(64, 64), paper=(255, 255, 255, 255))
    data = encode(image.convert("RGB") if fmt in ("JPEG", "BMP") else image, fmt)
    assert_json_4xx_or_prediction(post(server, "/predict", data=mutate(data, flips, cut),
                                       headers={"Content-Type": "image/" + fmt.lower()}))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)


@FUZZ
@given(value=JSON_VALUES, key=st.sampled_from(["image", "images", "other"]), path=st.sampled_from(["/predict", "/predict/batch"]))
def test_fuzz_json(server, value, key, path):
    assert_json_4xx_or_prediction(post(server, path, json={key: value}))


class RawResponse:
    """Just enough of a response for the checks, from http.client, which sends headers as given."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status_code = response.status
        self.headers = {k: v for k, v in response.getheaders()}
        self.text = response.read().decode("latin1")

    def json(self):
        return json.loads(self.text)


@FUZZ
@given(name=st.sampled_from(["Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding", "Accept",
                             "Origin", "Host", "Expect", "X-Forwarded-For"]),
       value=st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255, exclude_characters="\r\n"),
                     max_size=80))
def test_fuzz_headers(server, name, value):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest("POST", "/predict", skip_host=name == "Host", skip_accept_encoding=True)
        headers = {"Content-Type": "image/png", "Content-Length": str(len(PNG)), name: value}
        for key, header in headers.items():
            conn.putheader(key, header.encode("latin1"))
        conn.endheaders(PNG)
        try:
            response = RawResponse(conn.getresponse())
        except (ConnectionError, http.client.RemoteDisconnected):
            return  # the server may hang up on a head it cannot frame; it must still serve (checked last)
    finally:
        conn.close()
    assert_json_4xx_or_prediction(response)


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG that claims to be width x height: what a decompression bomb looks like up front."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (2**31 - 1, 2), (1_000_000, 50)])
def test_decompression_bombs_are_rejected_cheaply(server, width, height):
    started = time.perf_counter()
    response = post(server, "/predict", data=png_header(width, height), headers={"Content-Type": "image/png"})
    assert response.status_code == 413 and "pixels" in response.json()["error"]
    assert time.perf_counter() - started < 2  # answered from the header, nothing decoded


@pytest.mark.parametrize("path, content_type, status", [
    ("/predict", "image/png", 413), ("/predict", "application/json", 413), ("/predict/batch", "application/json", 413),
    ("/predict/batch", "image/png", 415),  # refused for its type before its size: readable all the same
])
def test_a_client_that_sends_a_big_body_whole_reads_the_answer(server, path, content_type, status):
    """requests and http.client send all 30 MB before reading: they must get the answer, not a reset."""
    body = b"\0" * (30 * 1024 * 1024)
    response = post(server, path, data=body, headers={"Content-Type": content_type})
    assert response.status_code == status and response.json()["error"]
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("POST", path, body=body, headers={"Content-Type": content_type})
    answer = connection.getresponse()
    assert answer.status == status and json.loads(answer.read())["error"]
    connection.close()


def test_an_endless_body_over_the_cap_is_cut_off_and_the_worker_freed(server):
    """A client that announces 1 GB and stalls after 20 MB gets its 413 once the drain's bound
    runs out, and the server goes on answering."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                     b"Content-Length: 1000000000\r\n\r\n" + b"\0" * (20 * 1024 * 1024))
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 413"), head[:100]
    assert post(server, "/predict", data=encode(draw(3)), headers={"Content-Type": "image/png"}).json()["digit"] == 3


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
def test_json_nested_thousands_deep_is_a_400(server, path):
    body = b'{"image": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = post(server, path, data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "nested too deeply" in response.json()["error"]
    assert "Traceback" not in server.output() and "RecursionError" not in server.output()


PNG_WHITE = encode(draw(5, paper=(255, 255, 255, 255)))


@pytest.mark.parametrize("data", [
    PNG_WHITE[:8],                                                   # the PNG signature and nothing else
    PNG_WHITE[:len(PNG_WHITE) // 2],                                 # half a PNG
    encode(draw(5), "JPEG")[:300],                                   # half a JPEG
    encode(draw(5, paper=(255, 255, 255, 255)).convert("P"), "GIF")[:10],
    encode(draw(5, paper=(255, 255, 255, 255)), "WEBP")[:16],
    b"BM\x00\x00",                                                 # a BMP header cut short
], ids=["PNG signature", "half a PNG", "half a JPEG", "GIF header", "WebP header", "BMP header"])
def test_a_truncated_file_of_a_format_we_read_is_400_not_415(server, data):
    response = post(server, "/predict", data=data, headers={"Content-Type": "image/png"})
    assert response.status_code == 400 and "truncated or corrupt" in response.json()["error"], response.text


def test_a_format_we_do_not_read_is_415(server):
    response = post(server, "/predict", data=b"%PDF-1.7\n...", headers={"Content-Type": "image/png"})
    assert response.status_code == 415


@pytest.mark.parametrize("method, path", [("PUT", "/predict"), ("TRACE", "/predict/batch"), ("DELETE", "/healthz"),
                                          ("POST", "/api/model")])
def test_wrong_method_says_which_are_allowed(server, method, path):
    response = requests.request(method, f"{server.url}{path}", timeout=10)
    assert response.status_code == 405 and response.json()["error"]
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed and method not in allowed


def test_batch_over_the_cap_is_413(server):
    image = base64.b64encode(encode(draw(1, canvas=(28, 28), brush=3))).decode()
    response = post(server, "/predict/batch", json={"images": [image] * 257})
    assert response.status_code == 413


def test_security_headers_everywhere(server):
    for path in ("/", "/predict", "/healthz", "/static/style.css", "/nope"):
        response = requests.get(f"{server.url}{path}", timeout=10)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp


@pytest.mark.parametrize("path", ["/static/../app/config.py", "/static/%2e%2e/app/config.py",
                                  "/static/..%2fapp%2fconfig.py", "/static//etc/passwd", "/static/%2fetc%2fpasswd"])
def test_static_files_cannot_escape_their_folder(server, path):
    response = requests.get(f"{server.url}{path}", timeout=10)
    assert response.status_code == 404 and "DIGITPAD" not in response.text and "root:" not in response.text


def test_user_input_is_never_reflected_as_html(server):
    payload = "<script>alert(1)</script>"
    page = requests.get(f"{server.url}/", params={"q": payload}, headers={"X-Forwarded-Host": payload,
                                                                        "Referer": payload}, timeout=10)
    assert page.headers["Content-Type"].startswith("text/html") and payload not in page.text
    for response in (  # errors may quote what was sent, but only ever as JSON, never as HTML
        requests.get(f"{server.url}/{payload}", timeout=10),
        post(server, "/predict", data=payload.encode(), headers={"Content-Type": f"text/{payload}"}),
        post(server, "/predict", json={"image": payload}),
    ):
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_cors_is_off_by_default(server):
    response = requests.options(f"{server.url}/predict", headers={
        "Origin": "https://example.org", "Access-Control-Request-Method": "POST"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_can_be_switched_on(monkeypatch):
    monkeypatch.setenv("DIGITPAD_CORS_ORIGINS", "https://allowed.example")
    from app import create_app

    client = create_app().test_client()
    allowed = client.options("/predict", headers={"Origin": "https://allowed.example",
                                                  "Access-Control-Request-Method": "POST"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://allowed.example"
    other = client.post("/predict", data=PNG, content_type="image/png", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_debug_mode_is_impossible_in_production():
    """Even with FLASK_DEBUG=1 and DEBUG asked for in code, the gunicorn config keeps debug off."""
    code = ("import runpy; runpy.run_path('gunicorn.conf.py'); from app import create_app; "
            "print(create_app({'DEBUG': True}).debug)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "FLASK_DEBUG": "1"},
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_still_serving_after_all_that(server):
    for digit in range(10):
        response = post(server, "/predict", data=encode(draw(digit)), headers={"Content-Type": "image/png"})
        assert response.json()["digit"] == digit
