"""The API's JSON renderer: snake_case serializer output as camelCase JSON, ``charset=utf-8``.

Key conversion is chefops.api.naming.to_camel (the djangorestframework-camel-case rule, so the
parser and renderer agree) behind a cache: converting every key of a 500-row page with a regular
expression was most of the rendering time on the hot list endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from rest_framework.renderers import JSONRenderer

from chefops.api.naming import to_camel


@lru_cache(maxsize=4096)
def camel_key(key: str) -> str:
    return to_camel(key)


def camelize(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {camel_key(k) if isinstance(k, str) else k: camelize(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [camelize(item) for item in data]
    return data


class CamelCaseJSONRenderer(JSONRenderer):
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        return super().render(camelize(data), accepted_media_type, renderer_context)
