"""The API's JSON renderer: snake_case serializer output as camelCase JSON, ``charset=utf-8``.

Key conversion is chefops.api.naming.to_camel (the djangorestframework-camel-case rule, so the
parser and renderer agree) behind a cache. Hot read paths build their bodies with camelCase keys
already and wrap them in ``CamelList`` / ``CamelDict``: those skip the key walk, which was most
of the rendering time of a page of hundreds of rows. Encoding is orjson's; values it does not
know natively (Decimal, dates and datetimes, lazy strings) go through DRF's own encoder, so the
output is byte-for-byte what ``rest_framework.renderers.JSONRenderer`` writes in compact mode.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

from chefops.api.naming import to_camel

_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_fallback_default = JSONEncoder().default


class CamelList(list[Any]):
    """A JSON array whose objects already have camelCase keys (rendered without conversion)."""


class CamelDict(dict[str, Any]):
    """A JSON object whose keys, at every level, are already camelCase."""


@lru_cache(maxsize=4096)
def camel_key(key: str) -> str:
    return to_camel(key)


# Values that are returned as they are, by exact type: the common leaves skip the isinstance
# checks below (``Mapping`` is an ABC: checking a Decimal or a date against it is slow), which
# were a fifth of a weekly report's CPU (issue #18).
_LEAVES = frozenset({str, int, float, bool, type(None), Decimal, date, datetime, uuid.UUID})


def camelize(data: Any) -> Any:
    kind = type(data)
    if kind is dict:
        return {
            camel_key(k) if isinstance(k, str) else k: v if type(v) in _LEAVES else camelize(v)
            for k, v in data.items()
        }
    if kind is list or kind is tuple:
        return [v if type(v) in _LEAVES else camelize(v) for v in data]
    if kind in _LEAVES or isinstance(data, (CamelList, CamelDict)):
        return data
    if isinstance(data, Mapping):
        return {camel_key(k) if isinstance(k, str) else k: camelize(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [camelize(item) for item in data]
    return data


def _default(value: Any) -> Any:
    return _fallback_default(value)


class CamelCaseJSONRenderer(JSONRenderer):
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        data = camelize(data)
        if self.get_indent(accepted_media_type or "", renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = orjson.dumps(data, default=_default, option=_ORJSON_OPTIONS)
        except (orjson.JSONEncodeError, TypeError):
            # e.g. an integer beyond 64 bits: DRF's encoder has no such limit
            return super().render(data, accepted_media_type, renderer_context)
        # As DRF does: U+2028/U+2029 are valid JSON but end a line in JavaScript source.
        if b"\xe2\x80\xa8" in body or b"\xe2\x80\xa9" in body:
            body = body.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return body
