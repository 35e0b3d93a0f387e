"""The negotiation shortcut (chefops/api/negotiation.py) answers what DRF's own would."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from chefops.api.negotiation import ApiContentNegotiation
from chefops.api.renderers import CamelCaseJSONRenderer

ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "application/json; indent=4",
    "application/*",
    "text/html",
    "text/html, application/json;q=0.9, */*;q=0.8",
    "",
    "APPLICATION/JSON",
]


def _negotiate(negotiation: DefaultContentNegotiation, accept: str | None, query: str) -> object:
    headers: dict[str, Any] = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(f"/api/contracts{query}", **headers))
    renderer = CamelCaseJSONRenderer()
    try:
        chosen, media_type = negotiation.select_renderer(request, [renderer])
    except Exception as exc:  # noqa: BLE001 - the refusal itself is compared
        return type(exc).__name__
    return (chosen is renderer, media_type)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?limit=5",
        "?format=json",
        "?format=api",
        "?%66ormat=api",
        "?forma%74=json",
        "?x=1&format=api",
        "?formats=api",
        "?x=%20",
    ],
)
@pytest.mark.parametrize("accept", ACCEPTS)
def test_the_shortcut_answers_as_drf_does(accept: str | None, query: str) -> None:
    assert _negotiate(ApiContentNegotiation(), accept, query) == _negotiate(
        DefaultContentNegotiation(), accept, query
    )


def test_the_api_uses_it() -> None:
    from rest_framework.settings import api_settings

    assert api_settings.DEFAULT_CONTENT_NEGOTIATION_CLASS is ApiContentNegotiation


@pytest.mark.parametrize("query", ["?limit=5&page=2", "?from=2026-01-05&to=2026-01-30"])
def test_a_query_that_cannot_name_the_override_is_not_parsed(query: str) -> None:
    request = Request(APIRequestFactory().get(f"/api/contracts{query}"))
    ApiContentNegotiation().select_renderer(request, [CamelCaseJSONRenderer()])
    assert "GET" not in request._request.__dict__  # Django's QueryDict, made on first use
