"""Views whose GET is answered from the per-tenant read cache (``chefops/readcache.py``)."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.views import APIView

from chefops import readcache


class CachedReadView(APIView):
    """A view whose GET answers through ``cached_response`` with ``read_cache_scopes``: its
    lookup is handed to authentication (``Prefetch``), which runs after content negotiation,
    so the principal and the cached body come back in one round trip."""

    def read_cache_scopes(self, company_id: Any) -> list[str]:
        return []

    def perform_authentication(self, request: Request) -> None:
        if request.method == "GET" and readcache.enabled():
            request.read_cache_prefetch = readcache.Prefetch(  # type: ignore[attr-defined]
                lambda company_id: readcache.lookup_keys(
                    company_id, readcache.request_key(request), self.read_cache_scopes(company_id)
                )
            )
        super().perform_authentication(request)
