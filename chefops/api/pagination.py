"""List paging (SPEC §2.13): ``page`` (from 1) and ``limit`` (default 100, max 500).

The body stays a JSON array; ``X-Total-Count`` and an RFC 8288 ``Link`` header carry the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from chefops.api.errors import BadRequest

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


def _positive_int(request: Request, name: str, default: int, maximum: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise BadRequest([f"{name} must be a positive integer"])
    value = int(raw)
    if maximum is not None and value > maximum:
        raise BadRequest([f"{name} must not be greater than {maximum}"])
    return value


class PagePagination(BasePagination):
    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        self.request = request
        self.page = _positive_int(request, "page", 1, None)
        self.limit = _positive_int(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
        self.total = queryset.count() if isinstance(queryset, QuerySet) else len(queryset)
        start = (self.page - 1) * self.limit
        return list(queryset[start : start + self.limit])

    def paginate_rows(
        self, request: Request, fetch: Callable[[int, int], list[Any]], count: Callable[[], int]
    ) -> list[Any]:
        """A page read with ``fetch(offset, limit)`` from a statement of its own.

        One row more than the page is asked for: a page that is not full (and not past the
        end) gives the total without running ``count()``. The list returned is the one
        ``fetch`` made (its type is kept), cut to the page.
        """
        self.request = request
        self.page = _positive_int(request, "page", 1, None)
        self.limit = _positive_int(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
        offset = (self.page - 1) * self.limit
        rows = fetch(offset, self.limit + 1)
        if len(rows) <= self.limit and (rows or offset == 0):
            self.total = offset + len(rows)
        else:
            self.total = count()
        del rows[self.limit :]
        return rows

    def get_paginated_response(self, data: Any) -> Response:
        response = Response(data)
        response["X-Total-Count"] = str(self.total)
        links = self.links()
        if links:
            response["Link"] = ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links)
        return response

    def links(self) -> list[tuple[str, str]]:
        url = self.request.build_absolute_uri()
        last = max(1, math.ceil(self.total / self.limit))

        def page_url(number: int) -> str:
            with_limit = replace_query_param(url, "limit", self.limit)
            return str(replace_query_param(with_limit, "page", number))

        out = [("first", page_url(1))]
        if self.page > 1:
            out.append(("prev", page_url(min(self.page - 1, last))))
        if self.page < last:
            out.append(("next", page_url(self.page + 1)))
        out.append(("last", page_url(last)))
        return out

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return schema

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": "page",
                "required": False,
                "in": "query",
                "description": "Page number, from 1.",
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": "limit",
                "required": False,
                "in": "query",
                "description": f"Items per page (default {DEFAULT_LIMIT}, max {MAX_LIMIT}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            },
        ]
