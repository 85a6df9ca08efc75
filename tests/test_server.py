"""Real HTTP against real gunicorn, as a script or curl would talk to it."""

import json
import os
import re
import subprocess
import sys

import requests

from tests.conftest import ROOT, Server, free_port
from tests.drawing import draw, encode


def test_predicts_every_digit_over_http(server):
    for digit in range(10):
        response = requests.post(f"{server.url}/predict", data=encode(draw(digit)),
                                 headers={"Content-Type": "image/png"}, timeout=10)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["digit"] == digit


def test_bad_requests_get_json_errors_and_the_server_stays_up(server):
    bad = [
        dict(data=b"garbage", headers={"Content-Type": "image/png"}),
        dict(data=b"{", headers={"Content-Type": "application/json"}),
        dict(data=b"x" * 100, headers={"Content-Type": "application/x-www-form-urlencoded"}),
        dict(files={"nope": ("a.png", b"123")}),
    ]
    for kwargs in bad:
        response = requests.post(f"{server.url}/predict", timeout=10, **kwargs)
        assert 400 <= response.status_code < 500 and "error" in response.json()
    assert requests.post(f"{server.url}/predict", data=encode(draw(8)), headers={"Content-Type": "image/png"},
                         timeout=10).json()["digit"] == 8


def test_batch_over_http(server):
    files = [("image", (f"{d}.png", encode(draw(d)), "image/png")) for d in range(10)]
    response = requests.post(f"{server.url}/predict/batch", files=files, timeout=30)
    assert [p["digit"] for p in response.json()["predictions"]] == list(range(10))


def test_curl(server, tmp_path):
    path = tmp_path / "five.png"
    path.write_bytes(encode(draw(5, paper=(255, 255, 255, 255))))
    out = subprocess.run(["curl", "-sS", "-F", f"image=@{path}", f"{server.url}/predict"],
                         capture_output=True, text=True, timeout=30)
    assert json.loads(out.stdout)["digit"] == 5


def test_broken_model_stops_startup_with_one_line(tmp_path):
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "app:create_app()", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, env={**os.environ, "DIGITPAD_MODEL": str(tmp_path / "missing.safetensors")},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "digitpad: cannot start: model file not found" in result.stderr


def test_dockerfile_cmd_serves():
    """No Docker engine here: run the image's CMD, with the image's environment, on this machine."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    assert cmd[0] == "gunicorn"
    env = dict(re.findall(r"^ENV (\w+)=(\S+)$", dockerfile, re.M))
    assert env["DIGITPAD_BIND"] == "0.0.0.0:8000"  # in the image; here the test binds to loopback
    server = Server(command=cmd, env={k: v for k, v in env.items() if k != "DIGITPAD_BIND"})
    try:
        response = requests.post(f"{server.url}/predict", data=encode(draw(2)),
                                 headers={"Content-Type": "image/png"}, timeout=10)
        assert response.json()["digit"] == 2
    finally:
        server.stop()


def test_cli_predictor(tmp_path):
    paths = []
    for digit in (4, 9):
        path = tmp_path / f"{digit}.png"
        path.write_bytes(encode(draw(digit, paper=(255, 255, 255, 255))))
        paths.append(str(path))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    plain = subprocess.run([sys.executable, "-m", "app.predict", *paths], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    assert plain.returncode == 0
    assert re.search(r"4\.png: 4 \(\d+\.\d%\)", plain.stdout) and re.search(r"9\.png: 9 ", plain.stdout)
    as_json = subprocess.run([sys.executable, "-m", "app.predict", "--json", paths[0], str(bad)], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    lines = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert lines[0]["digit"] == 4 and len(lines[0]["probabilities"]) == 10
    assert "error" in lines[1] and as_json.returncode == 1
