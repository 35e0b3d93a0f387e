"""Project middleware: request ids, trailing-slash tolerance for the API, health on any Host."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from chefops.logging import request_id_var

HEALTH_PATHS = frozenset({"/api/health", "/api/health/ready"})
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class RequestIdMiddleware:
    """Takes a sane incoming X-Request-ID or makes one; logs and the response carry it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
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
