"""JSON parser that turns the camelCase wire keys into snake_case serializer keys.

A key that is not in canonical camelCase (``daily_capacity``, ``DailyCapacity``) is kept
under ``UNKNOWN_KEY_PREFIX + original`` so strict serializers reject it by its own name.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from chefops.api.naming import to_camel, to_snake

UNKNOWN_KEY_PREFIX = "\x00"


def snake_keys(data: Any) -> Any:
    if isinstance(data, dict):
        result: dict[str, Any] = {}
        for key, value in data.items():
            snake = to_snake(key)
            internal = snake if to_camel(snake) == key else UNKNOWN_KEY_PREFIX + key
            result[internal] = snake_keys(value)
        return result
    if isinstance(data, list):
        return [snake_keys(item) for item in data]
    return data


def wire_name(key: str) -> str:
    """The name a client used for an internal key (for error messages)."""
    return key[len(UNKNOWN_KEY_PREFIX) :] if key.startswith(UNKNOWN_KEY_PREFIX) else to_camel(key)


class CamelCaseJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"Malformed JSON: {exc}") from exc
        return snake_keys(data)
