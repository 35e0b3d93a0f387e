"""A real gunicorn for tests that need several worker processes (loopback only)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, token: str | None = None) -> tuple[int, bytes]:
    """(status, body) of a GET, error statuses included."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback http
    try:
        with urllib.request.urlopen(request, timeout=10) as res:  # noqa: S310 - loopback
            return res.status, res.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def start_gunicorn(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``gunicorn chefops.wsgi -c gunicorn.conf.py`` from the project root, output discarded."""
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "chefops.wsgi", "-c", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextmanager
def running_gunicorn(env: dict[str, str], *, timeout: float = 60) -> Iterator[str]:
    """A gunicorn on ``env["PORT"]``, yielded (as its base URL) once ``/api/health`` answers
    200; stopped on exit."""
    proc = start_gunicorn(env)
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if http_get(f"{base}/api/health")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert proc.poll() is None, "gunicorn exited during start-up"
            assert time.monotonic() < deadline, f"gunicorn did not become healthy in {timeout} s"
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
