"""Domain errors and the one exception handler that renders every API error.

Body shape (SPEC §1): ``{"message": str | list[str], "error": "<HTTP reason>", "statusCode": int}``.
Authentication failures are ``{"message": "Unauthorized", "statusCode": 401}`` exactly.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import connections
from django.db.utils import InterfaceError as DjangoInterfaceError
from django.db.utils import OperationalError as DjangoOperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from chefops.api.naming import to_camel

logger = logging.getLogger("chefops.api")


class DomainError(Exception):
    """A foreseeable failure of a rule, carrying its HTTP status and a readable message."""

    status_code: int = 400

    def __init__(self, message: str | list[str], *, status_code: int | None = None) -> None:
        super().__init__(message if isinstance(message, str) else "; ".join(message))
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class BadRequest(DomainError):
    status_code = 400


class Unauthorized(DomainError):
    """A 401 raised by a service (login, refresh, change-password): keeps the ``error`` key."""

    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


def error_body(status_code: int, message: str | list[str]) -> dict[str, Any]:
    return {"message": message, "error": HTTPStatus(status_code).phrase, "statusCode": status_code}


UNAUTHORIZED_BODY = {"message": "Unauthorized", "statusCode": 401}
INTERNAL_ERROR_BODY = {"statusCode": 500, "message": "Internal server error"}


def flatten_validation_errors(detail: Any, field: str | None = None) -> list[str]:
    """Turn DRF's nested error detail into readable strings that name the field."""
    if isinstance(detail, Mapping):
        messages: list[str] = []
        for key, value in detail.items():
            name = None if key in ("non_field_errors", "__all__") else to_camel(str(key))
            if field and name and not name.isdigit():
                name = f"{field}.{name}"
            elif field and name and name.isdigit():
                name = field
            messages.extend(flatten_validation_errors(value, name or field))
        return messages
    if isinstance(detail, Sequence) and not isinstance(detail, str):
        messages = []
        for item in detail:
            messages.extend(flatten_validation_errors(item, field))
        return messages
    text = str(detail)
    if field and field.split(".")[-1] not in text:
        return [f"{field}: {text}"]
    return [text]


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response:
    request = context.get("request")
    headers: dict[str, str] = {}

    if database_unavailable(exc):
        return Response(**database_unavailable_answer(exc))
    if isinstance(exc, DomainError):
        return Response(error_body(exc.status_code, exc.message), status=exc.status_code)
    if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
        return Response(dict(UNAUTHORIZED_BODY), status=401)
    if isinstance(exc, drf_exceptions.MethodNotAllowed) and request is not None:
        # The original answers a wrong method on a known path like an unknown route.
        return Response(error_body(404, f"Cannot {request.method} {request.path}"), status=404)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound(str(exc) if str(exc) else None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied(str(exc) if str(exc) else None)

    if isinstance(exc, drf_exceptions.APIException):
        wait = getattr(exc, "wait", None)
        if isinstance(exc, drf_exceptions.Throttled) and wait is not None:
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        if auth_header := getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = auth_header
        status = exc.status_code
        message: str | list[str]
        if isinstance(exc, drf_exceptions.ValidationError):
            message = flatten_validation_errors(exc.detail)
        elif isinstance(exc, drf_exceptions.Throttled):
            message = "Too many requests, please try again later"
        else:
            detail = exc.detail
            message = (
                flatten_validation_errors(detail)
                if isinstance(detail, (list, dict))
                else str(detail)
            )
        return Response(error_body(status, message), status=status, headers=headers)

    view = context.get("view")
    logger.exception("Unhandled error in %s", type(view).__name__ if view else "view", exc_info=exc)
    return Response(dict(INTERNAL_ERROR_BODY), status=500)


@csrf_exempt  # like the DRF views: a POST must get this 404, not Django's HTML CSRF 403
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    """Unknown ``/api/...`` route (any method): the original's ``Cannot <METHOD> <path>`` 404."""
    return JsonResponse(error_body(404, f"Cannot {request.method} {request.path}"), status=404)


def handler400(request: HttpRequest, exception: Exception | None = None) -> Any:
    """Django's own 400s (a Host not allowed, a request it cannot parse) in the error shape."""
    if request.path == "/api" or request.path.startswith("/api/"):
        return JsonResponse(error_body(400, "Bad Request"), status=400)
    from django.views.defaults import bad_request

    return bad_request(request, exception or Exception())


def handler404(request: HttpRequest, exception: Exception | None = None) -> Any:
    if request.path.startswith("/api/"):
        return api_not_found(request)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception or Http404())


def handler500(request: HttpRequest) -> Any:
    # Django calls this while it handles the exception (raised in a middleware, or a view no
    # other layer answered): a database that cannot be reached is still a 503 there.
    exc = sys.exc_info()[1]
    if exc is not None and database_unavailable(exc):
        return database_unavailable_response(request, exc)
    if request.path.startswith("/api/"):
        return JsonResponse(dict(INTERNAL_ERROR_BODY), status=500)
    from django.views.defaults import server_error

    return server_error(request)


# --- the database cannot be reached: 503 -----------------------------------------------------

DATABASE_RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE_MESSAGE = "The database is unavailable, please try again shortly"
# SQLSTATEs of a refused or lost connection: class 08 (connection exception), 57P01-57P05 (the
# server shut down, crashed, is still starting, dropped the database, ended an idle session)
# and 53300 (too many connections). Class 57's 57014 (statement timeout, cancel) is not one.
_UNAVAILABLE_SQLSTATES = ("08", "57P", "53300")


def _driver_errors() -> tuple[type[BaseException], ...]:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a requirement
        return ()
    return (psycopg.OperationalError, psycopg.InterfaceError)


_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    DjangoOperationalError,
    DjangoInterfaceError,
    *_driver_errors(),
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached (refused, lost, shutting down),
    rather than a statement failing on a live connection: a serialization failure, a deadlock,
    a lock or statement timeout keep the handling they have (they are OperationalErrors too)."""
    if not isinstance(exc, _CONNECTION_ERRORS):
        return False
    if isinstance(exc, DjangoInterfaceError):  # "connection already closed"
        return True
    wrapped = isinstance(exc, DjangoOperationalError) and exc.__cause__ is not None
    cause = exc.__cause__ if wrapped else exc  # Django wraps the driver's error
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate:
        return str(sqlstate).startswith(_UNAVAILABLE_SQLSTATES)
    if type(cause).__module__.startswith("psycopg"):
        # No SQLSTATE: the client library itself failed (could not connect, connection lost).
        return True
    return "unable to open database file" in str(cause)  # SQLite


def _discard_broken_connections() -> None:
    """Close connections the failure left unusable, so the next request opens a new one
    instead of failing on the dead socket (the request-end cleanup does it too, with
    ``CONN_HEALTH_CHECKS``; this covers callers that skip it)."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and conn.errors_occurred and not conn.is_usable():
            conn.close()


def database_unavailable_answer(exc: BaseException) -> dict[str, Any]:
    """Logs the outage (one line, no traceback), drops broken connections, and returns the
    parts of the 503: ``data``, ``status`` and ``headers``."""
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    logger.warning("database unavailable: %s", first_line)
    _discard_broken_connections()
    return {
        "data": error_body(503, DATABASE_UNAVAILABLE_MESSAGE),
        "status": 503,
        "headers": {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    }


def database_unavailable_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """The 503 outside DRF views: the error shape under ``/api/``, plain text elsewhere (admin)."""
    answer = database_unavailable_answer(exc)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(
            answer["data"], status=503, content_type="application/json; charset=utf-8"
        )
    else:
        response = HttpResponse(
            f"{DATABASE_UNAVAILABLE_MESSAGE}.\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    for name, value in answer["headers"].items():
        response[name] = value
    return response
