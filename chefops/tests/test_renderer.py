"""The orjson-backed camelCase renderer writes what DRF's JSONRenderer writes."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.utils.functional import lazy
from rest_framework.renderers import JSONRenderer

from chefops.api.renderers import CamelCaseJSONRenderer, CamelDict, CamelList, camelize

lazy_text = lazy(lambda: "lazy text", str)


def sample() -> dict[Any, Any]:
    return {
        "contract_id": uuid.UUID("7f4c0a4e-6a1d-4f43-9b43-2f0c5cb2a0d1"),
        "price_per_service": Decimal("12.50"),
        "service_date": date(2026, 11, 30),
        "created_at": datetime(2026, 11, 28, 9, 30, 1, 123456, tzinfo=UTC),
        "nested_list": [{"day_of_week": 1, "is_ok": True, "nothing": None}, 2.5, "x"],
        "unicode_name": "Café «Niño» \u2028 line",
        "lazy_label": lazy_text(),
        "big": 2**70,
        7: "non-string key",
    }


def test_output_is_byte_for_byte_drf_compact_json() -> None:
    data = sample()
    data.pop("big")
    ours = CamelCaseJSONRenderer().render(data)
    theirs = JSONRenderer().render(camelize(data))
    assert ours == theirs
    assert b'"contractId":"7f4c0a4e-6a1d-4f43-9b43-2f0c5cb2a0d1"' in ours
    assert b'"pricePerService":12.5' in ours
    assert b"\\u2028" in ours and b"\xe2\x80\xa8" not in ours


def test_integers_beyond_64_bits_fall_back_to_drf() -> None:
    body = CamelCaseJSONRenderer().render({"big_number": 2**70})
    assert body == b'{"bigNumber":1180591620717411303424}'


def test_pre_camelized_bodies_are_not_walked() -> None:
    rows = CamelList([CamelDict({"already_snake": 1, "cateringName": "A"})])
    assert camelize(rows) is rows
    assert CamelCaseJSONRenderer().render(rows) == b'[{"already_snake":1,"cateringName":"A"}]'
    assert CamelCaseJSONRenderer().render({"outer_key": rows}) == (
        b'{"outerKey":[{"already_snake":1,"cateringName":"A"}]}'
    )


def test_indent_and_empty_bodies() -> None:
    renderer = CamelCaseJSONRenderer()
    assert renderer.render(None) == b""
    indented = renderer.render({"a_b": 1}, "application/json; indent=2")
    assert indented == b'{\n  "aB": 1\n}'


def reference_camelize(data: Any) -> Any:
    """The key walk as it was before its fast paths (issue #18): the specification."""
    from collections.abc import Mapping

    from chefops.api.renderers import camel_key

    if isinstance(data, (CamelList, CamelDict)):
        return data
    if isinstance(data, Mapping):
        return {
            camel_key(k) if isinstance(k, str) else k: reference_camelize(v)
            for k, v in data.items()
        }
    if isinstance(data, (list, tuple)):
        return [reference_camelize(item) for item in data]
    return data


def test_the_fast_key_walk_is_the_reference_walk() -> None:
    from collections import OrderedDict

    from hypothesis import given, settings
    from hypothesis import strategies as st
    from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),  # not JSON: refused by both
        st.text(max_size=5),
        st.decimals(allow_nan=False, allow_infinity=False),
        st.dates(),
        st.datetimes(timezones=st.just(UTC)),
        st.uuids(),
        st.just(lazy_text()),
    )
    from rest_framework.serializers import Serializer

    SERIALIZER: Serializer[Any] = Serializer()  # noqa: N806 - what DRF's serializer.data carries along
    keys = st.one_of(st.sampled_from(["a_b", "service_date", "x", "already_camel"]), st.integers())

    def containers(children: Any) -> Any:
        pairs = st.dictionaries(keys, children, max_size=4)
        return st.one_of(
            st.lists(children, max_size=4),
            st.lists(children, max_size=3).map(tuple),
            pairs,
            pairs.map(OrderedDict),
            pairs.map(lambda d: ReturnDict(d, serializer=SERIALIZER)),
            st.lists(children, max_size=3).map(lambda v: ReturnList(v, serializer=SERIALIZER)),
            pairs.map(lambda d: CamelDict({str(k): v for k, v in d.items()})),
            st.lists(children, max_size=3).map(CamelList),
        )

    @settings(max_examples=300, deadline=None)
    @given(st.recursive(leaves, containers, max_leaves=20))
    def check(data: Any) -> None:
        ours, reference = camelize(data), reference_camelize(data)
        assert ours == reference
        assert type(ours) is type(reference)
        assert CamelCaseJSONRenderer().render({"v": data}) == CamelCaseJSONRenderer().render(
            {"v": reference}
        )

    check()
