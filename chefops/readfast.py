"""Read-cache hits answered in front of Django's request cycle (issue #18).

A dashboard's polling is mostly cache hits (``chefops/readcache.py``): the body is stored, the
principal is cached, and a hit touches no database. Through Django such a request still paid
for the whole cycle around a lookup of about 0.1 ms: the request signals, fifteen middleware
layers, DRF's request wrapping, authentication, permissions and response finalisation, about
1 ms of CPU per request in all. This WSGI layer answers the same hit with the same pieces,
called directly, in the order Django calls them:

* the request phases of the middleware that act on an API GET: SecurityMiddleware (its HTTPS
  redirect), the request guard (NUL, bad query strings, oversized bodies), CommonMiddleware
  (the Host check);
* the URL resolver, and the view class's own DRF steps: content negotiation, version, the
  bearer token (``bearer_claims``), the principal from the cache only
  (``principals.cached_principal``, its lookup fetching the entry's keys in the same ``MGET``),
  ``admitted``, the view's permission classes, its cache scopes and stamp;
* ``readcache.hit`` and ``readcache.stored_response`` (the response ``cached_response``
  returns on a hit), DRF's ``finalize_response``, then the response phases: Content-Length
  (CommonMiddleware), CORS (corsheaders), the security headers (SecurityMiddleware),
  ``X-Request-ID``, and the request metrics (route label and latency).

Whatever else a request needs goes to Django, which answers it as always: any method but GET,
a body, no bearer token, a route that is not a ``CachedReadView``, anything one of these steps
refuses or redirects, a principal or entry not in the cache under the current tokens, the
first request of a minute of a user in this process (its activity is recorded by Django's
path), an error of any step (logged at debug level). A miss costs one extra ``MGET``; with the
read cache off this layer is not in the path at all, nor for ``OUTAGE_BACKOFF_SECONDS`` after
the cache failed it (``CacheOutage``). ``chefops/tests/test_read_fast_path.py``
compares both paths' status, headers and bodies.

The layer is built only when ``MIDDLEWARE`` is the list it was written for
(``ASSUMED_MIDDLEWARE``, which says what stands in for each): a change there has to be
reflected here, and until then every request goes through Django.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponse
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import get_resolver
from django.utils import timezone
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from rest_framework.authentication import get_authorization_header

from chefops import readcache
from chefops.api.cachedviews import CachedReadView
from chefops.logging import request_id_var
from chefops.middleware import ApiRequestGuardMiddleware, new_request_id, valid_request_id
from chefops.ops.metrics import HTTP_LATENCY, HTTP_REQUESTS, route_template

logger = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]

# What this layer does in place of each middleware of MIDDLEWARE, in its order.
ASSUMED_MIDDLEWARE = {
    "chefops.ops.metrics.PrometheusMiddleware": "the same counter and histogram, same route",
    "chefops.middleware.RequestIdMiddleware": "the same X-Request-ID rule and log context",
    "chefops.middleware.HealthHostMiddleware": "nothing: health paths only",
    "django.middleware.security.SecurityMiddleware": "its request and response phases",
    "whitenoise.middleware.WhiteNoiseMiddleware": "nothing: STATIC_URL only (not under /api)",
    "corsheaders.middleware.CorsMiddleware": "its response headers (preflights are OPTIONS)",
    "chefops.middleware.ApiTrailingSlashMiddleware": "a trailing slash goes to Django",
    "chefops.middleware.ApiRequestGuardMiddleware": "its checks (GET is a known method)",
    "chefops.middleware.AdminSessionMiddleware": "nothing: skipped for /api",
    "django.middleware.common.CommonMiddleware": "its request phase and Content-Length",
    "chefops.middleware.AdminCsrfViewMiddleware": "nothing: DRF views are csrf_exempt",
    "chefops.middleware.AdminAuthenticationMiddleware": "nothing: skipped for /api",
    "chefops.middleware.AdminMessageMiddleware": "nothing: skipped for /api",
    "chefops.middleware.AdminXFrameOptionsMiddleware": "nothing: skipped for /api",
    "chefops.middleware.DatabaseUnavailableMiddleware": "nothing: exceptions go to Django",
}


# A cache that fails or times out (SOCKET_TIMEOUT) is not asked again by this layer for a
# while: during an outage a request pays only Django's own fallbacks, not this layer's wait too.
CACHE_ERRORS = (ConnectionInterrupted, RedisError, OSError)
OUTAGE_BACKOFF_SECONDS = 5.0


class CacheOutage:
    """When this process's fast path last saw the cache fail (``time.monotonic``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.failed_at: float | None = None

    def seen(self) -> None:
        if not self.recent():
            logger.warning(
                "read-cache fast path: the cache failed; requests go through Django for %.0f s",
                OUTAGE_BACKOFF_SECONDS,
                exc_info=True,
            )
        self.failed_at = self.clock()

    def recent(self) -> bool:
        failed_at = self.failed_at
        return failed_at is not None and self.clock() - failed_at < OUTAGE_BACKOFF_SECONDS


cache_outage = CacheOutage()


def _unused(request: HttpRequest) -> HttpResponse:
    raise AssertionError("only the middleware's request and response phases are called")


def read_cache_fast_path(app: WSGIApp) -> WSGIApp:
    """``app`` (Django's WSGI handler), with read-cache hits answered in front of it."""
    if list(settings.MIDDLEWARE) != list(ASSUMED_MIDDLEWARE):
        logger.warning("MIDDLEWARE changed: read-cache hits go through Django (readfast.py)")
        return app
    if str(settings.STATIC_URL).lstrip("/").startswith("api"):
        logger.warning("STATIC_URL under /api: read-cache hits go through Django (WhiteNoise)")
        return app
    from corsheaders.middleware import CorsMiddleware

    from companies import principals
    from companies.authentication import (
        JWTAuthentication,
        activity_recorded,
        admitted,
        bearer_claims,
    )

    security = SecurityMiddleware(_unused)
    cors = CorsMiddleware(_unused)
    common = CommonMiddleware(_unused)

    def serve(request: WSGIRequest) -> HttpResponse | None:
        """The response Django would give ``request`` when it is a read-cache hit, else None."""
        if request.path_info.endswith("/"):
            return None  # ApiTrailingSlashMiddleware's
        # The route first (every /api path resolves: the API's 404 is a route too), so the
        # other GETs leave at once; the middleware checks below do not depend on it.
        match = get_resolver().resolve(request.path_info)
        func: Any = match.func
        view_class = getattr(func, "view_class", None)
        if (
            view_class is None
            or not issubclass(view_class, CachedReadView)
            or not getattr(func, "csrf_exempt", False)
            or list(view_class.authentication_classes) != [JWTAuthentication]
            or view_class.throttle_classes
        ):
            return None
        if security.process_request(request) is not None:
            return None
        if ApiRequestGuardMiddleware._refuse(request) is not None:
            return None
        if common.process_request(request) is not None:
            return None
        request.resolver_match = match
        view = view_class(**func.view_initkwargs)
        view.setup(request, *match.args, **match.kwargs)
        drf = view.initialize_request(request, *match.args, **match.kwargs)
        view.request = drf
        view.headers = view.default_response_headers
        view.format_kwarg = view.get_format_suffix(**match.kwargs)
        drf.accepted_renderer, drf.accepted_media_type = view.perform_content_negotiation(drf)
        drf.version, drf.versioning_scheme = view.determine_version(
            drf, *match.args, **match.kwargs
        )
        parsed = bearer_claims(get_authorization_header(drf))
        if parsed is None:
            return None
        claims, user_id, session_id = parsed
        company_id = uuid.UUID(str(claims.get("companyId")))
        scopes = view.read_cache_scopes(company_id)
        if scopes is None:
            return None
        keys = readcache.lookup_keys(company_id, readcache.request_key(drf), scopes)
        principal = principals.cached_principal(user_id, company_id, session_id, keys)
        if principal is None:
            return None
        user, found = principal
        if user.company_id != company_id or not admitted(user, claims):
            return None
        if not activity_recorded(user.pk):
            return None
        drf.user, drf.auth = user, claims
        view.check_permissions(drf)
        stamp = view.read_cache_stamp(timezone.now())
        value = readcache.hit(keys, stamp, found)
        if value is None:
            return None
        response: Any = view.finalize_response(
            drf, readcache.stored_response(drf.accepted_renderer, value)
        )
        response = common.process_response(request, response)
        response = cors.add_response_headers(request, response)
        response = security.process_response(request, response)
        return response

    def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if (
            environ.get("REQUEST_METHOD") != "GET"
            or "HTTP_AUTHORIZATION" not in environ
            or not environ.get("PATH_INFO", "").startswith("/api/")
            or environ.get("CONTENT_LENGTH", "") not in ("", "0")
            or "HTTP_TRANSFER_ENCODING" in environ
            or not readcache.enabled()
            or not principals.enabled()
            or cache_outage.recent()
        ):
            return app(environ, start_response)
        started = time.perf_counter()
        request = WSGIRequest(dict(environ))  # it rewrites PATH_INFO: Django's must be intact
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if valid_request_id(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        try:
            response = serve(request)
        except CACHE_ERRORS:
            cache_outage.seen()
            response = None
        except Exception:
            logger.debug("read-cache fast path: handed to Django", exc_info=True)
            response = None
        finally:
            request_id_var.reset(token)
        if response is None:
            return app(environ, start_response)
        response["X-Request-ID"] = request_id
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        route = route_template(request)
        HTTP_REQUESTS.labels("GET", route, f"{response.status_code // 100}xx").inc()
        HTTP_LATENCY.labels("GET", route).observe(time.perf_counter() - started)
        return [response.content]

    return application
