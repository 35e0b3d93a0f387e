"""The liveness probe answered in front of Django (chefops.health.health_fast_path) answers
what Django's view answers: status, headers and body, for every variant of the plain probe;
every other request reaches Django."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test import override_settings

from chefops import health
from chefops.ops.metrics import HTTP_REQUESTS

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(autouse=True)
def _no_remembered_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_database_ok_until", 0.0)


def environ(method: str = "GET", path: str = "/api/health", **extra: str) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "10.0.0.7",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "10.0.0.7:8000",  # a platform's probe: not an allowed host
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    env.update(extra)
    return env


class Django:
    """Django's WSGI handler, counting the requests that reach it."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()
        self.calls = 0

    def __call__(self, env: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        return self.handler(env, start_response)


def call(app: Any, env: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"], seen["headers"] = status, headers

    chunks = app(dict(env, **{"wsgi.input": io.BytesIO(b"")}), start_response)
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()  # Django's request_finished
    names = [name.lower() for name, _ in seen["headers"]]
    assert len(names) == len(set(names)), f"a header twice: {names}"
    return seen["status"], {k.lower(): v for k, v in seen["headers"]}, body


def normalised(body: bytes) -> bytes:
    """The body with the two values that change between calls replaced."""
    data = json.loads(body)
    assert ISO_MS.match(data["timestamp"]) and isinstance(data["uptime"], float)
    data["timestamp"], data["uptime"] = "T", 0.5
    return json.dumps(data, separators=(",", ":")).encode()


def both(env: dict[str, Any]) -> Iterator[tuple[str, dict[str, str], bytes]]:
    django = Django()
    fast = health.health_fast_path(django)
    for app in (django, fast):
        health._database_ok_until = 0.0  # each path probes
        yield call(app, env)
    assert django.calls == 1, "the fast path handed the plain probe to Django"


def assert_same(env: dict[str, Any], request_id: str | None = None) -> tuple[str, bytes]:
    (d_status, d_headers, d_body), (f_status, f_headers, f_body) = both(env)
    assert f_status == d_status
    assert normalised(f_body) == normalised(d_body)
    # each its own body's length (the uptime's digits vary between the calls)
    assert len(d_body) == int(d_headers.pop("content-length"))
    assert len(f_body) == int(f_headers.pop("content-length"))
    d_id, f_id = d_headers.pop("x-request-id"), f_headers.pop("x-request-id")
    if request_id is None:
        assert HEX32.match(d_id) and HEX32.match(f_id)
    else:
        assert d_id == f_id == request_id
    assert f_headers == d_headers
    return f_status, f_body


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("path", ["/api/health", "/api/health/"])
def test_the_plain_probe_answers_as_django_does(method: str, path: str) -> None:
    status, body = assert_same(environ(method, path))
    assert status == "200 OK"
    assert json.loads(body)["database"] == "connected"


@pytest.mark.django_db
def test_a_kept_and_a_refused_request_id() -> None:
    assert_same(environ(HTTP_X_REQUEST_ID="probe-1.a_B"), request_id="probe-1.a_B")
    assert_same(environ(HTTP_X_REQUEST_ID="no spaces allowed"))


@pytest.mark.django_db
@pytest.mark.parametrize("proto", ["https", "http", "https, http"])
@override_settings(
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    SECURE_HSTS_SECONDS=31536000,
    SECURE_HSTS_INCLUDE_SUBDOMAINS=True,
    SECURE_HSTS_PRELOAD=True,
    SECURE_SSL_REDIRECT=True,
    SECURE_REDIRECT_EXEMPT=[r"^api/health"],
    SECURE_REFERRER_POLICY=["same-origin", "strict-origin"],
)
def test_the_production_security_headers(proto: str) -> None:
    """Behind the platform's proxy (HSTS on HTTPS only), and its probe on plain HTTP."""
    (_, headers, _), _ = both(environ(HTTP_X_FORWARDED_PROTO=proto))
    assert ("strict-transport-security" in headers) is proto.startswith("https")
    assert_same(environ(HTTP_X_FORWARDED_PROTO=proto))


@pytest.mark.django_db
def test_a_database_down_answers_503_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "database_ok", lambda: False)
    status, body = assert_same(environ())
    assert status == "503 Service Unavailable"
    assert json.loads(body)["status"] == "error"
    assert health._database_ok_until == 0.0  # a failure is never remembered


@pytest.mark.django_db
def test_counted_in_the_request_metrics_as_django_counts_it() -> None:
    def count() -> float:
        return HTTP_REQUESTS.labels("GET", "api/health", "2xx")._value.get()

    before = count()
    list(both(environ()))
    assert count() == before + 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "env",
    [
        environ("OPTIONS"),
        environ("POST"),
        environ("TRACE"),
        environ(QUERY_STRING="x=1"),
        environ(HTTP_ORIGIN="http://localhost:3000"),
        environ(CONTENT_LENGTH="5"),
        environ(HTTP_TRANSFER_ENCODING="chunked"),
        environ(path="/api/health/ready"),
        environ(path="/api/healthz"),
    ],
    ids=["options", "post", "trace", "query", "origin", "body", "chunked", "ready", "other"],
)
def test_every_other_request_reaches_django(env: dict[str, Any]) -> None:
    django = Django()
    call(health.health_fast_path(django), env)
    assert django.calls == 1
