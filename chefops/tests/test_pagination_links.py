"""The Link header's page URLs are the ones DRF's replace_query_param makes (the format the
frontend and the original's clients follow), computed with one parse of the query."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.utils.urls import replace_query_param

from chefops.api.pagination import page_urls


def drf(url: str, limit: int, number: int) -> str:
    return str(replace_query_param(replace_query_param(url, "limit", limit), "page", number))


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/api/contracts",
        "https://api.example.com/api/contracts?page=3",
        "https://api.example.com/api/contracts?limit=7&page=2&status=ACTIVE",
        "https://api.example.com/api/contracts?zeta=1&alpha=2&page=9&limit=500",
        "http://h/api/x?a=1&a=2&b=&c&page=1&page=2",
        "http://h/api/x?q=%C3%A9t%C3%A9+%26+co&name=a%2Bb&limit=1",
        "http://h:8000/api/x?%F0%9F%8D%B2=%7E&pagex=1&limi=2",
    ],
)
@pytest.mark.parametrize(("limit", "number"), [(100, 1), (7, 2), (500, 2147483647)])
def test_the_urls_drf_makes(url: str, limit: int, number: int) -> None:
    assert page_urls(url, limit)(number) == drf(url, limit, number)


text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))


@given(
    params=st.lists(st.tuples(st.sampled_from(["page", "limit", "a", "z", "Page"]) | text, text)),
    limit=st.integers(1, 500),
    numbers=st.lists(st.integers(1, 2**31 - 1), min_size=1, max_size=4),
)
def test_any_query(params: list[tuple[str, str]], limit: int, numbers: list[int]) -> None:
    from urllib.parse import urlencode

    url = "https://api.example.com/api/contracts?" + urlencode(params)
    page_url = page_urls(url, limit)
    for number in numbers:  # one builder serves every link of a response
        assert page_url(number) == drf(url, limit, number)
