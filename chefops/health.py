"""Liveness (`/api/health`) and readiness (`/api/health/ready`) probes."""

from __future__ import annotations

import functools
import json
import logging
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chefops.api.fields import iso_ms

logger = logging.getLogger(__name__)
PROCESS_STARTED = time.monotonic()


# /api/health answers from a successful database probe of the last second (per process)
# instead of probing for every request: a platform probes every few seconds, but a load
# balancer or a benchmark may ask thousands of times a second, and the probe was a fifth of a
# health check's CPU (issue #18). A failed probe is never reused: an unreachable database
# still answers 503 at once (within the connect timeout), and a database that goes away is
# reported at most this long after. The readiness probe and the admin always probe.
DATABASE_OK_SECONDS = 1.0
_database_ok_until = 0.0


def database_recently_ok() -> bool:
    """database_ok(), or True if it passed in this process within DATABASE_OK_SECONDS."""
    global _database_ok_until
    if time.monotonic() < _database_ok_until:
        return True
    ok = database_ok()
    if ok:
        _database_ok_until = time.monotonic() + DATABASE_OK_SECONDS
    return ok


def database_ok() -> bool:
    try:
        # With CONN_HEALTH_CHECKS, a persistent connection's first use in a request may run
        # Django's own ``SELECT 1`` (closing it if that fails; our backend runs it only when
        # the socket shows trouble, chefops/db/postgresql/base.py): when it ran and passed
        # here, that was the probe, and a second round trip would only halve its throughput.
        db: Any = connection  # the health-check flags are not in django-stubs
        db.close_if_health_check_failed()
        if db.connection is not None and getattr(db, "health_check_probed", False):
            return True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True
    except DatabaseError as exc:
        logger.warning("health: database unreachable: %s", exc)
        # A broken persistent connection must not poison the next probe.
        connection.close_if_unusable_or_obsolete()
        return False


def cache_ok() -> bool:
    try:
        key = "health:probe"
        cache.set(key, "1", timeout=10)
        return bool(cache.get(key) == "1")
    except Exception as exc:  # noqa: BLE001 - any cache/driver failure means "not ready"
        logger.warning("health: cache unreachable: %s", exc)
        return False


def broker_ok() -> bool:
    """The Celery broker answers: its own Redis database (``CELERY_BROKER_URL``), probed apart
    from the cache's, or the filesystem broker's folder."""
    if settings.REDIS_BROKER_URL:
        import redis

        try:
            return bool(_broker_client(settings.REDIS_BROKER_URL).ping())
        except redis.RedisError as exc:
            logger.warning("health: broker unreachable: %s", exc)
            return False
    folder = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]))
    folder.mkdir(parents=True, exist_ok=True)
    return folder.is_dir()


@functools.lru_cache(maxsize=4)
def _broker_client(url: str) -> Any:
    """One client (and connection pool) per process: a probe reuses its connection instead of
    opening one, and never leaks one."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _uptime() -> float:
    return round(time.monotonic() - PROCESS_STARTED, 3)


HEALTH_SCHEMA = inline_serializer(
    "Health",
    {
        "status": serializers.CharField(),
        "timestamp": serializers.DateTimeField(),
        "database": serializers.CharField(),
        "uptime": serializers.FloatField(),
        "version": serializers.CharField(
            help_text=(
                "The release this server runs: the deployed commit SHA (CHEFOPS_VERSION, or "
                'the platform\'s commit variable), "dev" when none is known.'
            )
        ),
    },
)


class HealthView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(responses={200: HEALTH_SCHEMA, 503: HEALTH_SCHEMA}, auth=[])
    def get(self, request: Request) -> Response:
        ok = database_recently_ok()
        body = {
            "status": "ok" if ok else "error",
            "timestamp": iso_ms(timezone.now()),
            "database": "connected" if ok else "disconnected",
            "uptime": _uptime(),
            "version": settings.RELEASE_VERSION,
        }
        return Response(body, status=200 if ok else 503)


READINESS_SCHEMA = inline_serializer(
    "Readiness",
    {
        "status": serializers.CharField(),
        "timestamp": serializers.DateTimeField(),
        "uptime": serializers.FloatField(),
        "checks": serializers.DictField(child=serializers.CharField()),
    },
)


class ReadinessView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(responses={200: READINESS_SCHEMA, 503: READINESS_SCHEMA}, auth=[])
    def get(self, request: Request) -> Response:
        checks = {
            "database": "connected" if database_ok() else "disconnected",
            "cache": "connected" if cache_ok() else "disconnected",
            "broker": "connected" if broker_ok() else "disconnected",
        }
        ok = all(value == "connected" for value in checks.values())
        body = {
            "status": "ok" if ok else "error",
            "timestamp": iso_ms(timezone.now()),
            "uptime": _uptime(),
            "checks": checks,
        }
        return Response(body, status=200 if ok else 503)


# --- /api/health before Django (issue #18) ---------------------------------------------------
# A liveness probe needs none of Django's request machinery: no routing, authentication,
# negotiation, session or CSRF. Answered through Django, its Python cost was 2-4 times the web
# server's own per request; answered here, in front of Django, it costs about as much as a bare
# WSGI app. Only the plain probe takes this path — GET or HEAD of /api/health(/) with no query
# string, no body and no Origin header — and it answers exactly what the Django view would (the
# same body, the status, the security, CORS-Vary and request-id headers; test_health_fast_path
# compares both paths header for header), counted in the same request metrics. Anything else
# (a query string, a browser's cross-origin request, OPTIONS, another method) goes to Django.

_FAST_METHODS = frozenset({"GET", "HEAD"})
_FAST_PATHS = frozenset({"/api/health", "/api/health/"})
_HEALTH_ROUTE = "api/health"


def _security_headers(secure: bool) -> list[tuple[str, str]]:
    """What django.middleware.security.SecurityMiddleware adds to a response (the settings as
    they are when the fast path is built)."""
    headers: list[tuple[str, str]] = []
    if settings.SECURE_HSTS_SECONDS and secure:
        value = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            value += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            value += "; preload"
        headers.append(("Strict-Transport-Security", value))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    policy = settings.SECURE_REFERRER_POLICY
    if policy:
        if not isinstance(policy, str):
            policy = ",".join(policy)
        headers.append(("Referrer-Policy", policy.strip()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    return headers


def _is_secure(environ: dict[str, Any]) -> bool:
    """HttpRequest.is_secure() for this environ (SECURE_PROXY_SSL_HEADER, then the scheme)."""
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy:
        header, secure_value = proxy
        value = environ.get(header)
        if value is not None:
            return str(value).split(",", 1)[0].strip() == secure_value
    return bool(environ.get("wsgi.url_scheme") == "https")


def health_fast_path(app: Any) -> Any:
    """``app`` (Django's WSGI handler), with the plain liveness probe answered in front of it."""
    from django.core import signals
    from django.core.handlers.wsgi import WSGIHandler
    from rest_framework.settings import api_settings

    from chefops.logging import request_id_var
    from chefops.middleware import new_request_id, valid_request_id
    from chefops.ops.metrics import HTTP_LATENCY, HTTP_REQUESTS

    ensure_ascii = not api_settings.UNICODE_JSON
    # corsheaders varies every /api response on Origin; DRF names what the view allows.
    fixed = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Allow", "GET, HEAD, OPTIONS"),
        ("Vary", "origin"),
    ]
    security = {secure: _security_headers(secure) for secure in (False, True)}
    # Each process's labelled children, made at its first probe: never in gunicorn's master
    # (the app is preloaded before the metrics directory exists), where values would be
    # bound to the master's file.
    children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def observe(method: str, status: int, elapsed: float) -> None:
        pair = children.get((method, status))
        if pair is None:
            pair = children[method, status] = (
                HTTP_REQUESTS.labels(method, _HEALTH_ROUTE, f"{status // 100}xx"),
                HTTP_LATENCY.labels(method, _HEALTH_ROUTE),
            )
        pair[0].inc()
        pair[1].observe(elapsed)

    reasons = {200: "200 OK", 503: "503 Service Unavailable"}

    def application(environ: dict[str, Any], start_response: Any) -> Any:
        method = environ.get("REQUEST_METHOD")
        if (
            method not in _FAST_METHODS
            or environ.get("PATH_INFO") not in _FAST_PATHS
            or environ.get("QUERY_STRING")
            or "HTTP_ORIGIN" in environ
            or environ.get("CONTENT_LENGTH", "0") not in ("", "0")
            or "HTTP_TRANSFER_ENCODING" in environ
        ):
            return app(environ, start_response)
        started = time.perf_counter()
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if valid_request_id(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        try:
            ok = _probe_as_a_request(environ)
        finally:
            request_id_var.reset(token)
        status = 200 if ok else 503
        body = json.dumps(
            {
                "status": "ok" if ok else "error",
                "timestamp": iso_ms(timezone.now()),
                "database": "connected" if ok else "disconnected",
                "uptime": _uptime(),
                "version": settings.RELEASE_VERSION,
            },
            ensure_ascii=ensure_ascii,
            separators=(",", ":"),
        ).encode()
        headers = [
            *fixed,
            ("Content-Length", str(len(body))),
            *security[_is_secure(environ)],
            ("X-Request-ID", request_id),
        ]
        start_response(reasons[status], headers)
        observe(method, status, time.perf_counter() - started)
        return [body]

    def _probe_as_a_request(environ: dict[str, Any]) -> bool:
        if time.monotonic() < _database_ok_until:
            return True
        # A real probe, inside the signals of a Django request: their receivers close an
        # obsolete connection and return a pooled one, as for any request.
        signals.request_started.send(sender=WSGIHandler, environ=environ)
        try:
            return database_recently_ok()
        finally:
            signals.request_finished.send(sender=WSGIHandler)

    return application
