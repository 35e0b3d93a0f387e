"""Project middleware: request ids, trailing-slash tolerance for the API, health on any Host,
the guard that refuses unknown methods and unusable API request lines, and the admin's own
middleware (sessions, CSRF cookie, authentication, messages, clickjacking), which skips the
requests of the API and of /metrics (issue #18)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csrf import CsrfViewMiddleware

from chefops.api.errors import error_body
from chefops.api.parsers import MAX_BODY_BYTES, PayloadTooLarge
from chefops.logging import request_id_var

HEALTH_PATHS = frozenset({"/api/health", "/api/health/ready"})
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def new_request_id() -> str:
    """32 lowercase hex digits, as ``uuid.uuid4().hex`` (the format logs and clients see)."""
    return uuid.uuid4().hex


def valid_request_id(incoming: str) -> bool:
    """Whether a client's X-Request-ID is kept (else the response carries a new one)."""
    return _VALID_REQUEST_ID.match(incoming) is not None


class RequestIdMiddleware:
    """Takes a sane incoming X-Request-ID or makes one; logs and the response carry it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if valid_request_id(incoming) else new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class HealthHostMiddleware:
    """Health probes come with whatever Host the platform uses: answer them regardless.

    Runs before CommonMiddleware/SecurityMiddleware would validate the Host header.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.rstrip("/") in HEALTH_PATHS:
            from django.conf import settings

            allowed = settings.ALLOWED_HOSTS
            if allowed and "*" not in allowed:
                request.META["HTTP_HOST"] = allowed[0].lstrip(".") or "localhost"
        return self.get_response(request)


class ApiTrailingSlashMiddleware:
    """`/api/health/` is served like `/api/health` (the original accepts both), no redirect."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path.startswith("/api/") and len(path) > 5 and path.endswith("/"):
            request.path_info = path.rstrip("/")
        return self.get_response(request)


# The methods the API and the admin answer; anything else (TRACE, CONNECT, FOO, WebDAV verbs)
# is refused on every route before routing, CSRF or authentication.
KNOWN_METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")


def _is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def _error(status: int, message: str | list[str]) -> HttpResponse:
    return JsonResponse(error_body(status, message), status=status)


def _query_problems(raw: bytes, max_fields: int | None) -> list[str]:
    """What makes a query string unusable, per parameter: not UTF-8 once percent-decoded
    (an encoded surrogate such as ``%ED%B3%80`` is not UTF-8), or a NUL character. Django
    would replace the first with U+FFFD and hand the second to a query; PostgreSQL refuses it."""
    if max_fields is not None and raw.count(b"&") + 1 > max_fields:
        return [f"Too many query parameters (at most {max_fields})"]
    problems: list[str] = []
    for field in raw.split(b"&"):
        if not field:
            continue
        raw_name, _, raw_value = field.partition(b"=")
        try:
            name = unquote_to_bytes(raw_name.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            problems.append("query parameter names must be valid UTF-8 text")
            continue
        if "\x00" in name:
            problems.append("query parameter names must not contain NUL characters")
            continue
        try:
            value = unquote_to_bytes(raw_value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{name} must be valid UTF-8 text")
            continue
        if "\x00" in value:
            problems.append(f"{name} must not contain NUL characters")
    return problems


class ApiRequestGuardMiddleware:
    """Answers, in the API's error shape and before any view runs, what no view can handle:

    - an unknown method on any route: 405 (a known method a route does not serve stays the
      original's 404 ``Cannot <METHOD> <path>``, from the view);
    - under ``/api``: a NUL character in the path or a query parameter, a query parameter
      that is not UTF-8, too many query parameters (400), and a ``Content-Length`` over the
      parser's limit (413, whether or not the endpoint reads a body).

    Placed after CORS, so a browser can read these errors too.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in KNOWN_METHODS:
            response = _error(405, f"Method {request.method} is not supported")
            response["Allow"] = ", ".join(KNOWN_METHODS)
            return response
        if _is_api(request.path_info):
            refused = self._refuse(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    @staticmethod
    def _refuse(request: HttpRequest) -> HttpResponse | None:
        if "\x00" in request.path:
            return _error(400, ["path must not contain NUL characters"])
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isascii() or not length.isdigit():
            return _error(400, "Content-Length must be a number of bytes")
        if int(length) > MAX_BODY_BYTES:
            return _error(413, str(PayloadTooLarge.default_detail))
        query = request.META.get("QUERY_STRING", "")
        if query:
            # WSGI hands the query string over as Latin-1 text: these are its raw bytes.
            raw = query.encode("iso-8859-1", errors="replace")
            problems = _query_problems(raw, settings.DATA_UPLOAD_MAX_NUMBER_FIELDS)
            if problems:
                return _error(400, problems)
        return None


class DatabaseUnavailableMiddleware:
    """A view outside DRF (the admin, plain Django views) that cannot reach the database
    answers 503 with ``Retry-After`` instead of 500; DRF views get the same from the API's
    exception handler, and exceptions raised in middleware from ``handler500``
    (``chefops/api/errors.py``). Listed last so it sees the view's exception first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from chefops.api.errors import database_unavailable, database_unavailable_response

        if database_unavailable(exception):
            return database_unavailable_response(request, exception)
        return None


# --- The admin's middleware, skipped by the API and /metrics (issue #18) ---------------------
# The API authenticates with bearer tokens and never reads a session, a CSRF cookie, Django's
# request.user or messages, and its JSON is not framed: for /api and /metrics these five only
# cost time (a tenth of a health check's CPU). Each is Django's own class, listed in MIDDLEWARE
# as before (the admin's system checks look for them there), whose request/response work is
# skipped on those paths. Their other hooks are Django's, collected as always: the CSRF check
# (CsrfViewMiddleware.process_view) runs for every view, so a view that is not csrf_exempt
# still refuses a POST without a token, on any path.


def serves_admin_middleware(path: str) -> bool:
    """Whether the admin's middleware runs for ``path`` (after ApiTrailingSlashMiddleware):
    everywhere but the API and /metrics."""
    return not (path == "/metrics" or _is_api(path))


class _AdminPathsOnly:
    """Mixed in before a Django middleware class: its request/response work (``__call__``)
    for the admin's paths, straight to the next layer for the others."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        django_middleware: Any = super()
        if serves_admin_middleware(request.path_info):
            return django_middleware.__call__(request)
        this: Any = self
        return this.get_response(request)


class AdminSessionMiddleware(_AdminPathsOnly, SessionMiddleware):
    """SessionMiddleware, skipped for /api and /metrics."""


class AdminCsrfViewMiddleware(_AdminPathsOnly, CsrfViewMiddleware):
    """CsrfViewMiddleware: its cookie handling is skipped for /api and /metrics; its check
    (``process_view``) runs for every request, as Django's does."""


class AdminAuthenticationMiddleware(_AdminPathsOnly, AuthenticationMiddleware):
    """AuthenticationMiddleware (``request.user`` of the session), skipped for /api and
    /metrics (DRF's request.user comes from the bearer token)."""


class AdminMessageMiddleware(_AdminPathsOnly, MessageMiddleware):
    """MessageMiddleware, skipped for /api and /metrics."""


class AdminXFrameOptionsMiddleware(_AdminPathsOnly, XFrameOptionsMiddleware):
    """XFrameOptionsMiddleware (``X-Frame-Options: DENY``), for pages only: JSON and the
    metrics text are not framed."""
