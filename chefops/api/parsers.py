"""JSON parser that turns the camelCase wire keys into snake_case serializer keys.

A key that is not in canonical camelCase (``daily_capacity``, ``DailyCapacity``) is kept
under ``UNKNOWN_KEY_PREFIX + original`` so strict serializers reject it by its own name.

It is also the one place every JSON body passes, so it refuses what no endpoint can use, before
any field or query sees it: a body over ``MAX_BODY_BYTES`` (413), bytes that are not UTF-8 or
not strict JSON (``NaN`` and ``Infinity`` are not JSON), nesting deeper than ``MAX_JSON_DEPTH``
(checked on the raw text, before anything recurses), and a NUL character or an unpaired UTF-16
surrogate in any key or string (PostgreSQL stores neither); each of these is a 400 naming the
place in the body, as sent.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser

from chefops.api.fields import api_error, printable, text_problems
from chefops.api.naming import to_camel, to_snake

# No client key can start with it: the parser refuses NUL in keys.
UNKNOWN_KEY_PREFIX = "\x00"

# Every body of this API is a small object (the largest, a contract, is well under 1 KiB); a
# quarter of a MiB leaves room for any client while a body is never held whole beyond it.
MAX_BODY_BYTES = 256 * 1024
# The deepest legitimate body is two levels (an object holding an array of weekdays).
MAX_JSON_DEPTH = 32
# A body full of bad strings is answered with this many messages, not one per string.
MAX_TEXT_MESSAGES = 20

_JSON_STRUCTURE = re.compile(r'[\[\]{}"\\]')


class PayloadTooLarge(APIException):
    status_code = 413
    default_detail = f"Request body must not be larger than {MAX_BODY_BYTES} bytes"
    default_code = "payload_too_large"


def nesting_exceeds(text: str, limit: int) -> bool:
    """Whether the arrays and objects of a JSON text nest deeper than ``limit``.

    A linear scan of the brackets outside strings, run before ``json.loads`` (which recurses
    in C) and before ``snake_keys`` (which recurses in Python); it stops at the first level
    too deep, so ``[`` x 100,000 costs ``limit`` steps.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    in_string = False
    escaped = -1  # position of the character a backslash escapes
    for match in _JSON_STRUCTURE.finditer(text):
        position = match.start()
        if position == escaped:
            continue
        char = match.group()
        if char == '"':
            in_string = not in_string
        elif char == "\\":
            if in_string:
                escaped = position + 1
        elif in_string:
            continue
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


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


def text_errors(data: Any, path: str = "") -> list[str]:
    """Every key or string of ``data`` that cannot be stored as text, named by its place in
    the body (``name``, ``extra.deep``, ``officeDays[1]``). ``data`` is at most
    ``MAX_JSON_DEPTH`` deep, so the recursion is bounded."""
    out: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            place = f"{path}.{key}" if path else key
            out.extend(
                problem.format(name=f"property {printable(place)}")
                for problem in text_problems(key)
            )
            out.extend(text_errors(value, place))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            out.extend(text_errors(item, f"{path}[{index}]"))
    elif isinstance(data, str):
        out.extend(problem.format(name=printable(path)) for problem in text_problems(data))
    return out[:MAX_TEXT_MESSAGES]


def wire_name(key: str) -> str:
    """The name a client used for an internal key (for error messages)."""
    return key[len(UNKNOWN_KEY_PREFIX) :] if key.startswith(UNKNOWN_KEY_PREFIX) else to_camel(key)


def _not_a_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class CamelCaseJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        # One byte more than allowed tells a body at the limit from one over it (a chunked
        # body has no Content-Length for the request guard to check).
        raw = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLarge()
        if not raw.strip():
            return {}
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"Malformed JSON: {exc}") from exc
        if nesting_exceeds(text, MAX_JSON_DEPTH):
            raise api_error([f"Request body is nested deeper than {MAX_JSON_DEPTH} levels"])
        try:
            data = json.loads(text, parse_constant=_not_a_json_constant)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"Malformed JSON: {exc}") from exc
        # NUL and lone surrogates can only come from \u escapes (raw ones are not valid JSON
        # text, and UTF-8 cannot encode a surrogate): without one, there is nothing to look at.
        if "\\u" in text:
            problems = text_errors(data)
            if problems:
                raise api_error(problems)
        return snake_keys(data)
