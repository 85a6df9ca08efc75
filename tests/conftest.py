"""Shared fixtures: MNIST when it is there, the app, and a real gunicorn server."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from tests.services import Postgres, Redis, Unavailable, free_port

ROOT = Path(__file__).resolve().parents[1]

# Corrections posted by the tests go to a throwaway SQLite file, never to the repository's instance folder.
_STORE_DIR = tempfile.TemporaryDirectory(prefix="digitpad-store-")
os.environ["DIGITPAD_DATABASE_URL"] = f"sqlite:///{_STORE_DIR.name}/corrections.sqlite3"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST files, from $MNIST_DIR; tests that need them skip without it."""
    value = os.environ.get("MNIST_DIR")
    if not value:
        pytest.skip("MNIST_DIR is not set: point it at a folder with the four MNIST *-ubyte.gz files")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"MNIST_DIR={value} is not a folder")
    return path


@pytest.fixture(scope="session")
def app():
    from app import create_app

    return create_app({"TESTING": True})


@pytest.fixture()
def client(app):
    return app.test_client()


class Server:
    """gunicorn serving the app with the shipped config, on a free port of the loopback."""

    def __init__(self, *args: str, workers: int | None = None, env: dict[str, str] | None = None,
                 command: list[str] | None = None) -> None:
        """Start `gunicorn app:create_app() *args`, or `command` (which must bind to $DIGITPAD_BIND).

        With `workers`, returns only once that many workers are up: /readyz answers as soon as
        the first one is, and a test that counts workers must not race the second.
        """
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **(env or {}), "DIGITPAD_BIND": f"127.0.0.1:{self.port}"}
        if workers is not None:
            args = ("--workers", str(workers), *args)
        command = command or ["gunicorn", "app:create_app()", *args]
        # The server's log goes to a file: a pipe nobody reads fills up and blocks the server.
        self.log = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", *command], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{self.output()}")
            try:
                ready = requests.get(f"{self.url}/readyz", timeout=1).ok
                if ready and (workers is None or len(self.worker_pids()) == workers):
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("gunicorn did not become ready in 60 s")

    def worker_pids(self) -> list[int]:
        """The pids of gunicorn's workers: the master's children."""
        pid = self.process.pid
        return sorted(int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> str:
        """Stop the server; returns everything it logged."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.output()


# The operator's token on the session's server, so that its operator endpoints exist.
OPERATOR_TOKEN = "session-operator-token"


@pytest.fixture(scope="session")
def server():
    s = Server(workers=2, env={"DIGITPAD_ADMIN_TOKEN": OPERATOR_TOKEN})
    yield s
    s.stop()


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster for the session; tests skip, saying why, where none can run."""
    try:
        cluster = Postgres()
    except Unavailable as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_url():
    try:
        server = Redis()
    except Unavailable as exc:
        pytest.skip(f"no Redis server: {exc}")
    yield server.url
    server.stop()
