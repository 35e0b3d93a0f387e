"""Views whose GET is answered from the per-tenant read cache (``chefops/readcache.py``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chefops import readcache


class CachedReadView(APIView):
    """A view whose GET answers through ``cached`` (``cached_response`` with
    ``read_cache_scopes`` and ``read_cache_stamp``): its lookup is handed to authentication
    (``Prefetch``), which runs after content negotiation, so the principal and the cached body
    come back in one round trip. A hit can also be answered in front of Django
    (``chefops/readfast.py``), from the same two methods."""

    def read_cache_scopes(self, company_id: Any) -> list[str] | None:
        """The scopes of this request's entry (``self.kwargs`` are the URL's), or None when
        the request is never cached."""
        return []

    def read_cache_stamp(self, now: datetime) -> str:
        """What else than the tokens an entry must have been computed under, at ``now``."""
        return ""

    def cached(
        self,
        request: Request,
        company_id: Any,
        build: Callable[[], Response],
        now: datetime | None = None,
    ) -> HttpResponse:
        """``build()``'s response through the read cache, under this view's scopes and stamp
        (at ``now``, the clock the response is computed with); a request that is never cached
        (no scopes: a malformed id, answered 400 by ``build``) skips the lookup."""
        scopes = self.read_cache_scopes(company_id)
        if scopes is None:
            return build()
        stamp = self.read_cache_stamp(timezone.now() if now is None else now)
        return readcache.cached_response(request, company_id, build, scopes=scopes, stamp=stamp)

    def perform_authentication(self, request: Request) -> None:
        if request.method == "GET" and readcache.enabled():

            def keys_for(company_id: Any) -> list[str]:
                scopes = self.read_cache_scopes(company_id)
                if scopes is None:
                    return []
                return readcache.lookup_keys(company_id, readcache.request_key(request), scopes)

            request.read_cache_prefetch = readcache.Prefetch(keys_for)  # type: ignore[attr-defined]
        super().perform_authentication(request)


def utc_date_stamp(now: datetime) -> str:
    """A stamp for figures that depend on today's date (UTC)."""
    return now.astimezone(UTC).date().isoformat()
