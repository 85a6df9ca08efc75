"""Corrections: taken from anyone, stored once, bounded, and shown only to the operator.

The API's rules through Flask's test client on SQLite; durability and sharing through real
gunicorn servers on SQLite and on a real PostgreSQL, with a worker killed mid-run.
"""

from __future__ import annotations

import base64
import io
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from PIL import Image

from app import create_app
from model import corrections as export_formats
from tests.conftest import Server
from tests.drawing import draw, encode

TOKEN = "operator-token-for-tests"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


def drawing(digit: int, variant: int = 0) -> str:
    """A data URL of `digit`, drawn a little differently for each variant: a different field each time."""
    angle = (variant % 21 - 10) * 0.03
    left = 30 + (variant // 21) % 9 * 4
    return "data:image/png;base64," + base64.b64encode(
        encode(draw(digit, canvas=(160, 160), box=(left, 25, 110), brush=10 + variant % 5, angle=angle,
                    supersample=2))).decode()


def make_client(tmp_path, **config):
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/corrections.sqlite3",
                      "ADMIN_TOKEN": TOKEN, **config})
    return app.test_client()


@pytest.fixture()
def client(tmp_path):
    return make_client(tmp_path)


def test_a_correction_is_stored_once_with_what_the_model_saw(client):
    first = client.post("/api/corrections", json={"image": drawing(7), "label": 1, "predicted": 7})
    assert first.status_code == 201, first.json
    again = client.post("/api/corrections", json={"image": drawing(7), "label": 1, "predicted": 7})
    assert again.status_code == 200 and again.json["id"] == first.json["id"]
    other_label = client.post("/api/corrections", json={"image": drawing(7), "label": 2})
    assert other_label.status_code == 201 and other_label.json["id"] != first.json["id"]
    assert "Set-Cookie" not in first.headers

    listing = client.get("/api/corrections", headers=OPERATOR).json
    assert listing["total"] == 2
    newest, oldest = listing["corrections"]
    assert (oldest["id"], oldest["label"], oldest["predicted"]) == (first.json["id"], 1, 7)
    assert oldest["created_at"].endswith("+00:00")
    assert newest["predicted"] is None
    assert oldest["model_version"] == client.get("/api/model").json["version"]
    field = Image.open(io.BytesIO(base64.b64decode(oldest["field"].split(",", 1)[1])))
    assert field.size == (28, 28)
    # The stored field is the one /predict shows as the image the model saw.
    preview = client.post("/predict", json={"image": drawing(7)}).json["preview"]
    assert np.array_equal(np.asarray(field), np.asarray(Image.open(io.BytesIO(base64.b64decode(preview.split(",")[1])))))


@pytest.mark.parametrize("body, status, words", [
    ({"image": "x"}, 400, "missing field 'label'"),
    ({"image": "x", "label": 10}, 400, "from 0 to 9"),
    ({"image": "x", "label": True}, 400, "from 0 to 9"),
    ({"image": "x", "label": "7"}, 400, "from 0 to 9"),
    ({"image": "x", "label": 7, "predicted": -1}, 400, "'predicted'"),
    ({"label": 7}, 400, "missing field 'image'"),
    ({"image": "not base64!", "label": 7}, 400, "not valid base64"),
    ({"image": base64.b64encode(b"hello").decode(), "label": 7}, 415, ""),
    ({"image": base64.b64encode(encode(Image.new("L", (64, 64), 255))).decode(), "label": 7}, 422, ""),
])
def test_bad_corrections_are_refused_saying_why(client, body, status, words):
    response = client.post("/api/corrections", json=body)
    assert response.status_code == status
    assert words in response.json["error"]
    assert client.get("/api/corrections", headers=OPERATOR).json["total"] == 0


def test_only_json_is_taken(client):
    response = client.post("/api/corrections", data=encode(draw(3)), content_type="image/png")
    assert response.status_code == 415 and "application/json" in response.json["error"]


@pytest.mark.parametrize("method, path", [("GET", "/api/corrections"), ("GET", "/api/corrections/export"),
                                          ("DELETE", "/api/corrections/1")])
def test_operator_endpoints_refuse_missing_and_wrong_tokens(client, method, path):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Bearer"}):
        response = client.open(path, method=method, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in response.json["error"]
    assert client.open(path, method=method, headers=OPERATOR).status_code in (200, 204, 404)


def test_operator_endpoints_do_not_exist_without_a_token(tmp_path):
    client = make_client(tmp_path, ADMIN_TOKEN=None)
    assert client.post("/api/corrections", json={"image": drawing(4), "label": 4}).status_code == 201
    for method, path in [("GET", "/api/corrections"), ("GET", "/api/corrections/export?format=npz"),
                         ("DELETE", "/api/corrections/1")]:
        assert client.open(path, method=method, headers=OPERATOR).status_code == 404


def test_review_pages_and_deletes(client):
    ids = [client.post("/api/corrections", json={"image": drawing(d), "label": d}).json["id"] for d in range(5)]
    page = client.get("/api/corrections?limit=2&offset=1", headers=OPERATOR).json
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
    assert [c["id"] for c in page["corrections"]] == ids[::-1][1:3]
    assert client.get("/api/corrections?limit=0", headers=OPERATOR).status_code == 400
    assert client.get("/api/corrections?offset=x", headers=OPERATOR).status_code == 400
    assert client.delete(f"/api/corrections/{ids[0]}", headers=OPERATOR).status_code == 204
    gone = client.delete(f"/api/corrections/{ids[0]}", headers=OPERATOR)
    assert gone.status_code == 404 and str(ids[0]) in gone.json["error"]
    assert client.get("/api/corrections", headers=OPERATOR).json["total"] == 4


@pytest.mark.parametrize("fmt", ["npz", "idx"])
def test_export_holds_every_field_and_label(client, fmt):
    for d in range(10):
        client.post("/api/corrections", json={"image": drawing(d), "label": (d + 1) % 10})
    response = client.get(f"/api/corrections/export?format={fmt}", headers=OPERATOR)
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    exported = export_formats.decode(response.data)
    assert exported.images.shape == (10, 28, 28) and exported.images.dtype == np.uint8
    assert exported.labels.tolist() == [(d + 1) % 10 for d in range(10)]
    listing = client.get("/api/corrections", headers=OPERATOR).json["corrections"][::-1]
    for image, row in zip(exported.images, listing):
        png = Image.open(io.BytesIO(base64.b64decode(row["field"].split(",", 1)[1])))
        assert np.array_equal(image, np.asarray(png))
    if fmt == "npz":  # readable with NumPy alone
        with np.load(io.BytesIO(response.data)) as npz:
            assert npz["images"].dtype == np.uint8 and npz["labels"].dtype == np.uint8
    assert client.get("/api/corrections/export?format=csv", headers=OPERATOR).status_code == 400


def test_rate_limit_per_client_with_retry_after(tmp_path):
    client = make_client(tmp_path, CORRECTIONS_PER_MINUTE=3)
    for i in range(3):
        assert client.post("/api/corrections", json={"image": drawing(i), "label": i}).status_code == 201
    refused = client.post("/api/corrections", json={"image": drawing(5), "label": 5})
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert "3 a minute" in refused.json["error"]
    other = client.post("/api/corrections", json={"image": drawing(5), "label": 5},
                        environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 201
    assert other.headers["X-RateLimit-Limit"] == "3"
    # Predictions are neither limited nor counted: a client that has predicted many times may still correct.
    for _ in range(5):
        predicted = client.post("/predict", json={"image": drawing(5)}, environ_base={"REMOTE_ADDR": "192.0.2.8"})
        assert predicted.status_code == 200 and "X-RateLimit-Limit" not in predicted.headers
    assert client.post("/api/corrections", json={"image": drawing(6), "label": 6},
                       environ_base={"REMOTE_ADDR": "192.0.2.8"}).headers["X-RateLimit-Remaining"] == "2"


def test_cap_on_stored_corrections(tmp_path):
    client = make_client(tmp_path, MAX_CORRECTIONS=3)
    for i in range(3):
        assert client.post("/api/corrections", json={"image": drawing(i), "label": i}).status_code == 201
    full = client.post("/api/corrections", json={"image": drawing(8), "label": 8})
    assert full.status_code == 507 and "full" in full.json["error"]
    # A correction already kept is still acknowledged; after a deletion there is room again.
    assert client.post("/api/corrections", json={"image": drawing(0), "label": 0}).status_code == 200
    assert client.delete("/api/corrections/1", headers=OPERATOR).status_code == 204
    assert client.post("/api/corrections", json={"image": drawing(8), "label": 8}).status_code == 201


def test_original_is_kept_up_to_its_cap(tmp_path):
    from sqlalchemy import create_engine, text

    small, large = encode(draw(2, canvas=(100, 100))), encode(draw(3, canvas=(900, 900)))
    client = make_client(tmp_path, MAX_ORIGINAL_BYTES=len(small))
    for png, label in ((small, 2), (large, 3)):
        client.post("/api/corrections", json={"image": base64.b64encode(png).decode(), "label": label})
    engine = create_engine(f"sqlite:///{tmp_path}/corrections.sqlite3")
    with engine.connect() as connection:
        originals = connection.execute(text("SELECT original FROM corrections ORDER BY id")).scalars().all()
    engine.dispose()
    assert originals == [small, None]


def test_an_unreachable_database_stops_start_up_with_one_line(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    result = subprocess.run([sys.executable, "-c", "from app import create_app; create_app()"], cwd=ROOT,
                            env={**os.environ, "DIGITPAD_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/x"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "cannot start" in result.stderr and "corrections database" in result.stderr


# -----------------------------------------------------------------------------
# Real servers: several clients at once, a worker killed in the middle, nothing lost or doubled.


def post_all(urls: list[str], clients_per_server: int, per_client: int, kill) -> dict[int, int]:
    """Each client posts its own corrections, retrying any whose answer was lost; -> {correction: id}."""
    total = len(urls) * clients_per_server * per_client
    bodies = [{"image": drawing(n % 10, n // 10), "label": (n + 3) % 10} for n in range(total)]
    acknowledged: dict[int, int] = {}
    lost_answers = []
    done = threading.Semaphore(0)

    def client(c: int) -> None:
        url = urls[c % len(urls)]
        with requests.Session() as session:
            for k in range(per_client):
                n = c * per_client + k
                for attempt in range(10):
                    try:
                        response = session.post(f"{url}/api/corrections", json=bodies[n], timeout=30)
                    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                        # The kill can come before the answer or halfway through its body: either way
                        # the client never learns the id, and retries (the store dedups).
                        lost_answers.append(n)
                        time.sleep(0.2)
                        continue
                    assert response.status_code in (200, 201), response.text
                    acknowledged[n] = response.json()["id"]
                    break
                done.release()

    with ThreadPoolExecutor(len(urls) * clients_per_server) as pool:
        futures = [pool.submit(client, c) for c in range(len(urls) * clients_per_server)]
        for _ in range(total // 3):
            done.acquire()
        kill()
        for future in futures:
            future.result()
    assert len(acknowledged) == total, "every correction is acknowledged in the end"
    print(f"{total} corrections, {len(lost_answers)} answers lost to the kill and retried")
    return acknowledged


def stored(url: str) -> tuple[list[int], np.ndarray]:
    ids, offset = [], 0
    while True:
        page = requests.get(f"{url}/api/corrections?limit=500&offset={offset}", headers=OPERATOR, timeout=30).json()
        ids += [c["id"] for c in page["corrections"]]
        offset += 500
        if offset >= page["total"]:
            break
    export = requests.get(f"{url}/api/corrections/export?format=npz", headers=OPERATOR, timeout=30)
    return ids, export_formats.decode(export.content).images


def kill_a_worker(server: Server):
    def kill() -> None:
        victim = server.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        server.killed = victim
    return kill


def check_exactly_once(url: str, acknowledged: dict[int, int], servers: list[Server]) -> None:
    ids, images = stored(url)
    assert sorted(ids) == sorted(set(acknowledged.values())), "each acknowledged correction is there, once"
    assert len(ids) == len(set(ids)) == len(images)
    assert len(np.unique(images.reshape(len(images), -1), axis=0)) == len(images)
    for server in servers:
        if getattr(server, "killed", None):
            assert server.killed not in server.worker_pids()


def serve(database_url: str, **env: str) -> Server:
    return Server(workers=2, env={"DIGITPAD_DATABASE_URL": database_url, "DIGITPAD_ADMIN_TOKEN": TOKEN,
                                  "DIGITPAD_CORRECTIONS_PER_MINUTE": "100000", **env})


@pytest.mark.slow
def test_sqlite_server_keeps_every_acknowledged_correction_through_a_sigkill(tmp_path):
    server = serve(f"sqlite:///{tmp_path}/corrections.sqlite3")
    try:
        acknowledged = post_all([server.url], clients_per_server=8, per_client=6, kill=kill_a_worker(server))
        check_exactly_once(server.url, acknowledged, [server])
    finally:
        log = server.stop()
    assert "Traceback" not in log


@pytest.mark.slow
def test_two_servers_share_one_postgresql_through_a_sigkill(postgres):
    url = postgres.create_database("digitpad_fleet")
    first, second = serve(url), serve(url)
    try:
        acknowledged = post_all([first.url, second.url], clients_per_server=8, per_client=5,
                                kill=kill_a_worker(first))
        check_exactly_once(second.url, acknowledged, [first, second])
        # Both servers see one store.
        assert requests.get(f"{first.url}/api/corrections", headers=OPERATOR).json()["total"] == len(acknowledged)
    finally:
        logs = first.stop() + second.stop()
    assert "Traceback" not in logs


@pytest.mark.slow
def test_postgresql_store_enforces_cap_and_dedup(postgres):
    url = postgres.create_database("digitpad_cap")
    server = serve(url, DIGITPAD_MAX_CORRECTIONS="5")
    try:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda n: requests.post(
                f"{server.url}/api/corrections", json={"image": drawing(n % 10, n), "label": 1}, timeout=30).status_code,
                range(12)))
        assert statuses.count(201) == 5 and statuses.count(507) == 7
        again = requests.post(f"{server.url}/api/corrections", json={"image": drawing(0, 0), "label": 1})
        assert again.status_code in (200, 507)
        assert requests.get(f"{server.url}/api/corrections", headers=OPERATOR).json()["total"] == 5
    finally:
        server.stop()


@pytest.mark.slow
def test_rate_limit_is_shared_through_redis(tmp_path, redis_url):
    env = {"DIGITPAD_RATELIMIT_STORAGE_URI": redis_url, "DIGITPAD_CORRECTIONS_PER_MINUTE": "4"}
    database = f"sqlite:///{tmp_path}/corrections.sqlite3"
    first, second = serve(database, **env), serve(database, **env)
    try:
        statuses = [requests.post(f"{server.url}/api/corrections", json={"image": drawing(n), "label": n}).status_code
                    for n, server in enumerate([first, second] * 3)]
        assert statuses == [201] * 4 + [429] * 2, statuses
    finally:
        first.stop()
        second.stop()


@pytest.mark.slow
def test_a_database_that_goes_away_gives_503_then_recovers():
    from tests.services import Postgres

    cluster = Postgres()  # its own: this test stops it
    try:
        server = serve(cluster.create_database("digitpad_outage"))
        try:
            body = {"image": drawing(3), "label": 8}
            assert requests.post(f"{server.url}/api/corrections", json=body).status_code == 201
            cluster.halt()
            down = requests.post(f"{server.url}/api/corrections", json={"image": drawing(4), "label": 9})
            assert down.status_code == 503 and int(down.headers["Retry-After"]) > 0
            assert "unavailable" in down.json()["error"]
            assert requests.post(f"{server.url}/predict", json={"image": drawing(4)}).status_code == 200
            cluster.resume()
            again = requests.post(f"{server.url}/api/corrections", json={"image": drawing(4), "label": 9})
            assert again.status_code == 201
        finally:
            log = server.stop()
        assert "Traceback" not in log
    finally:
        cluster.stop()


@pytest.mark.slow
def test_without_its_redis_the_limit_falls_back_to_each_worker(tmp_path):
    from tests.services import Redis

    redis = Redis()
    server = serve(f"sqlite:///{tmp_path}/corrections.sqlite3", DIGITPAD_RATELIMIT_STORAGE_URI=redis.url,
                   DIGITPAD_CORRECTIONS_PER_MINUTE="3")
    try:
        assert requests.post(f"{server.url}/api/corrections", json={"image": drawing(1), "label": 1}).status_code == 201
        redis.stop()
        statuses = [requests.post(f"{server.url}/api/corrections", json={"image": drawing(n), "label": n}).status_code
                    for n in range(2, 10)]
        assert 201 in statuses and 429 in statuses and set(statuses) <= {201, 429}, statuses
    finally:
        log = server.stop()
    assert "Traceback" not in log


def test_a_database_made_by_a_newer_digitpad_is_refused(tmp_path):
    from sqlalchemy import create_engine, text

    from app.core.store import SCHEMA_VERSION, Store, StoreError

    url = f"sqlite:///{tmp_path}/corrections.sqlite3"
    Store(url).close()  # made on first start
    Store(url).close()  # and opened as it is on the next
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE digitpad_schema SET version = :v"), {"v": SCHEMA_VERSION + 1})
    engine.dispose()
    with pytest.raises(StoreError, match="newer than this digitpad"):
        Store(url)
