"""Throwaway database servers for the tests: a PostgreSQL cluster and a Redis, each on a free port.

PostgreSQL refuses to run as root, so as root the cluster is made and run by the `postgres`
user that Debian's package creates. Each helper raises `Unavailable` with the reason when the
server cannot be had here; the fixtures turn that into a skip.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time


class Unavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen | None = None, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise Unavailable(f"the server exited at start-up with status {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise Unavailable(f"nothing listened on port {port} within {seconds:.0f} s")


class Postgres:
    """A fresh cluster in a temporary folder, trusting local connections, stopped by `stop()`."""

    def __init__(self) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not binaries:
            raise Unavailable("PostgreSQL is not installed (Debian package 'postgresql'; .ci/run installs it)")
        self.bin = os.path.dirname(binaries[-1])
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user and shutil.which("runuser") is None:
            raise Unavailable("running as root without runuser: cannot start PostgreSQL as another user")
        self.dir = tempfile.mkdtemp(prefix="digitpad-pg-")
        if self.user:
            shutil.chown(self.dir, self.user)
        self.port = free_port()
        data = os.path.join(self.dir, "data")
        self._run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        self.data = data
        self.resume()

    def _run(self, program: str, *args: str) -> None:
        command = [os.path.join(self.bin, program), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise Unavailable(f"{program} failed: {done.stderr.strip() or done.stdout.strip()}")

    def halt(self) -> None:
        """Stop the server, keeping its data: an outage."""
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200", "start")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        except Unavailable:  # already stopped
            pass
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    """redis-server on a free port, in memory only."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise Unavailable("redis-server is not installed (Debian package 'redis-server'; .ci/run installs it)")
        self.port = free_port()
        self.process = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, self.process)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
