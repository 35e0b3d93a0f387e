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
                if not override or override not in request.query_params:
                    return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)
