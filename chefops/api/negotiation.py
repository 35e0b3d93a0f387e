"""DRF's content negotiation with a shortcut for what nearly every API client sends (issue #18).

A view with one renderer (every API view: ``CamelCaseJSONRenderer``), asked with no ``Accept``
header, ``Accept: */*`` or exactly the renderer's media type, and without a ``?format=``
override, gets that renderer and its media type without parsing the header: the answer
``DefaultContentNegotiation`` gives for those requests (chefops/tests/test_negotiation.py
compares the two). Anything else goes through DRF's negotiation unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class ApiContentNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> Any:
        if isinstance(renderers, (list, tuple)) and len(renderers) == 1 and not format_suffix:
            renderer = renderers[0]
            accept = request.META.get("HTTP_ACCEPT")
            if accept is None or accept == "*/*" or accept == renderer.media_type:
                override = self.settings.URL_FORMAT_OVERRIDE
                if not override or not _may_name(request, override):
                    return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)


def _may_name(request: Request, name: str) -> bool:
    """Whether the query string names parameter ``name``, parsed only when its raw text holds
    the name or an escape that could decode to it (a hit of the read cache parses it for
    nothing else)."""
    query = request.META.get("QUERY_STRING", "")
    if name not in query and "%" not in query and "+" not in query:
        return False
    return name in request.query_params
