"""Rate limits of the public auth routes, per client IP and per e-mail (or token).

Fixed windows counted in the shared cache with ``add`` + ``incr`` (atomic in Redis), so every
gunicorn worker and every instance sees the same counters. Rates come from the settings
``AUTH_THROTTLE_IP_RATE`` / ``AUTH_THROTTLE_EMAIL_RATE`` (``"30/min"``; ``"off"`` disables).
A cache outage lets requests through (logged): refusing every login would be worse.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from companies.rules import parse_rate

logger = logging.getLogger(__name__)


def client_ip(request: Request) -> str:
    """REMOTE_ADDR, or the address the trusted proxies saw when NUM_PROXIES is configured.

    X-Forwarded-For is ignored unless REST_FRAMEWORK["NUM_PROXIES"] is a positive number:
    a client can write any X-Forwarded-For it likes, which would make the limit meaningless.
    """
    remote = str(request.META.get("REMOTE_ADDR", "") or "unknown")
    num_proxies = api_settings.NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if isinstance(num_proxies, int) and num_proxies > 0 and forwarded:
        addresses = [a.strip() for a in str(forwarded).split(",") if a.strip()]
        if addresses:
            return addresses[-min(num_proxies, len(addresses))]
    return remote


class _CacheWindowThrottle(BaseThrottle):
    setting_name = ""
    dimension = ""

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def identity(self, request: Request, view: Any) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        rate = parse_rate(getattr(settings, self.setting_name, None))
        if rate is None:
            return True
        ident = self.identity(request, view)
        if not ident:
            return True
        limit, period = rate
        now = time.time()
        window = math.floor(now / period)
        digest = hashlib.sha256(ident.encode("utf-8")).hexdigest()[:32]
        scope = getattr(view, "throttle_scope", type(view).__name__)
        key = f"auth-throttle:{scope}:{self.dimension}:{digest}:{period}:{window}"
        try:
            cache.add(key, 0, timeout=period + 5)
            try:
                count = cache.incr(key)
            except ValueError:  # evicted between add and incr
                cache.set(key, 1, timeout=period + 5)
                count = 1
        except Exception:
            logger.warning("auth throttle: cache unavailable, request let through", exc_info=True)
            return True
        if count > limit:
            self.retry_after = (window + 1) * period - now
            return False
        return True

    def wait(self) -> float | None:
        return self.retry_after


class AuthIPThrottle(_CacheWindowThrottle):
    setting_name = "AUTH_THROTTLE_IP_RATE"
    dimension = "ip"

    def identity(self, request: Request, view: Any) -> str | None:
        return client_ip(request)


class AuthIdentityThrottle(_CacheWindowThrottle):
    """Per e-mail (login, forgot-password) or per presented token (refresh, reset-password).

    The view names the body key with ``throttle_identity_field`` (snake_case, as the parser
    delivers it); e-mails are compared in lower case, as they are stored.
    """

    setting_name = "AUTH_THROTTLE_EMAIL_RATE"
    dimension = "identity"

    def identity(self, request: Request, view: Any) -> str | None:
        field = getattr(view, "throttle_identity_field", None)
        data = request.data
        if not field or not isinstance(data, dict):
            return None
        value = data.get(field)
        if not isinstance(value, str) or not value.strip():
            return None
        return f"{field}:{value.strip().lower()}"
