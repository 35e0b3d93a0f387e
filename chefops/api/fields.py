"""Strict input fields with class-validator style messages (SPEC §1, reference §1.3).

Each field reports *every* failing constraint of a value, in the original's order, as full
sentences naming the field as the client sent it (camelCase). No type coercion: ``"30"`` is
not an integer, ``1`` is not a boolean, ``""`` is not "absent".

What the database cannot store is refused here too, so it never reaches a query as a 500:
text with a NUL character or an unpaired UTF-16 surrogate (PostgreSQL rejects both), integers
outside the ``integer`` column type, and instants whose UTC date falls outside years 1-9999.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.fields import SkipField, empty

from chefops.api.naming import to_camel

API_ERROR_CODE = "api"

Check = tuple[Callable[[Any], bool], str]

# PostgreSQL ``integer`` (and SQLite's range check for it): every integer column of the schema.
DB_INT_MAX = 2_147_483_647
DB_INT_MIN = -DB_INT_MAX - 1

NUL_MESSAGE = "{name} must not contain NUL characters"
SURROGATE_MESSAGE = "{name} must not contain unpaired UTF-16 surrogates"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def api_error(messages: Sequence[str]) -> ValidationError:
    return ValidationError([ErrorDetail(m, code=API_ERROR_CODE) for m in messages])


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)


def has_nul(value: Any) -> bool:
    return isinstance(value, str) and "\x00" in value


def has_lone_surrogate(value: Any) -> bool:
    """A JSON ``\\udc00`` escape without its pair decodes to a code point no UTF-8 text (and no
    database) can hold; a valid pair has already become one character."""
    return isinstance(value, str) and _LONE_SURROGATE.search(value) is not None


def text_problems(value: str) -> list[str]:
    """The message templates (``{name}``) for what makes ``value`` unstorable as text."""
    out = []
    if has_nul(value):
        out.append(NUL_MESSAGE)
    if has_lone_surrogate(value):
        out.append(SURROGATE_MESSAGE)
    return out


def printable(value: str) -> str:
    """``value`` with NUL and lone surrogates written as JSON escapes, to quote it in a message."""
    if not text_problems(value):
        return value
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", value).replace(
        "\x00", "\\u0000"
    )


class ApiField(serializers.Field):
    """Base: subclasses list their checks; ``{name}`` in a message is the wire name."""

    def __init__(self, *, messages: dict[str, str] | None = None, **kwargs: Any) -> None:
        self.custom_messages = messages or {}
        super().__init__(**kwargs)

    @property
    def wire_name(self) -> str:
        return to_camel(self.field_name or "")

    def checks(self) -> list[tuple[str, Callable[[Any], bool], str]]:
        """(key, passes(value), default message) in the order messages are emitted."""
        raise NotImplementedError

    def failures(self, value: Any) -> list[str]:
        out = []
        for key, passes, default in self.checks():
            if not passes(value):
                out.append(self.custom_messages.get(key, default).format(name=self.wire_name))
        return out

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is empty:
            if getattr(self.root, "partial", False):
                raise SkipField()
            if self.required:
                raise api_error(self.failures(None))
            if self.default is not empty:
                return True, self.get_default()
            raise SkipField()
        if data is None:
            if not self.allow_null:
                raise api_error(self.failures(None))
            return True, None
        return False, data

    def to_internal_value(self, data: Any) -> Any:
        failed = self.failures(data)
        if failed:
            raise api_error(failed)
        return self.convert(data)

    def convert(self, value: Any) -> Any:
        return value

    def to_representation(self, value: Any) -> Any:
        return value


class StringField(ApiField):
    def __init__(
        self,
        *,
        not_empty: bool = False,
        min_length: int | None = None,
        max_length: int | None = None,
        trim: bool = False,
        **kwargs: Any,
    ) -> None:
        self.not_empty = not_empty
        self.min_length = min_length
        self.max_length = max_length
        self.trim = trim
        super().__init__(**kwargs)

    def checks(self) -> list[tuple[str, Callable[[Any], bool], str]]:
        out: list[tuple[str, Callable[[Any], bool], str]] = []
        if self.max_length is not None:
            n = self.max_length
            out.append(
                (
                    "max_length",
                    lambda v: isinstance(v, str) and len(v) <= n,
                    "{name} must be shorter than or equal to %d characters" % n,
                )
            )
        if self.min_length is not None:
            m = self.min_length
            out.append(
                (
                    "min_length",
                    lambda v: isinstance(v, str) and len(v) >= m,
                    "{name} must be longer than or equal to %d characters" % m,
                )
            )
        if self.not_empty:
            out.append(
                ("not_empty", lambda v: v is not None and v != "", "{name} should not be empty")
            )
        out.append(("type", lambda v: isinstance(v, str), "{name} must be a string"))
        out.append(("nul", lambda v: not has_nul(v), NUL_MESSAGE))
        out.append(("surrogate", lambda v: not has_lone_surrogate(v), SURROGATE_MESSAGE))
        return out

    def convert(self, value: Any) -> Any:
        return value.strip() if self.trim else value


_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}$"
)


class EmailField(ApiField):
    """An e-mail address with a TLD; stored and compared in lower case."""

    def checks(self) -> list[tuple[str, Callable[[Any], bool], str]]:
        return [
            (
                "email",
                lambda v: isinstance(v, str) and len(v) <= 254 and bool(_EMAIL_RE.match(v)),
                "{name} must be an email",
            )
        ]

    def convert(self, value: Any) -> Any:
        return value.strip().lower()


class IntegerField(ApiField):
    """An integer; without an explicit bound, the range of the ``integer`` column applies.

    The column bounds speak only for numbers, so a missing or mistyped value still gets
    exactly the original's messages.
    """

    def __init__(
        self, *, min_value: int | None = None, max_value: int | None = None, **kwargs: Any
    ) -> None:
        self.min_value = min_value
        self.max_value = max_value
        super().__init__(**kwargs)

    def checks(self) -> list[tuple[str, Callable[[Any], bool], str]]:
        out: list[tuple[str, Callable[[Any], bool], str]] = []
        if self.max_value is not None:
            hi = self.max_value
            out.append(
                (
                    "max",
                    lambda v: is_number(v) and v <= hi,
                    "{name} must not be greater than %d" % hi,
                )
            )
        else:
            out.append(
                (
                    "max",
                    lambda v: not is_number(v) or v <= DB_INT_MAX,
                    "{name} must not be greater than %d" % DB_INT_MAX,
                )
            )
        if self.min_value is not None:
            lo = self.min_value
            out.append(
                ("min", lambda v: is_number(v) and v >= lo, "{name} must not be less than %d" % lo)
            )
        else:
            out.append(
                (
                    "min",
                    lambda v: not is_number(v) or v >= DB_INT_MIN,
                    "{name} must not be less than %d" % DB_INT_MIN,
                )
            )
        out.append(("type", is_int, "{name} must be an integer number"))
        return out


MAX_MONEY = Decimal("9999999999.99")


class MoneyField(ApiField):
    """A JSON number >= 0 with at most 12 digits, rounded half-up to cents."""

    def __init__(self, *, min_value: int = 0, **kwargs: Any) -> None:
        self.min_value = min_value
        super().__init__(**kwargs)

    def checks(self) -> list[tuple[str, Callable[[Any], bool], str]]:
        lo = self.min_value
        return [
            # Our addition (the original has no upper bound): only a number can be too large,
            # so a missing or mistyped value gets exactly the original's two messages.
            (
                "max",
                lambda v: not is_number(v) or Decimal(str(v)) <= MAX_MONEY,
                "{name} must not be greater than 9999999999.99",
            ),
            ("min", lambda v: is_number(v) and v >= lo, "{name} must not be less than %d" % lo),
            ("type", is_number, "{name} must be a number conforming to the specified constraints"),
        ]

    def convert(self, value: Any) -> Decimal:
        try:
            return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        except InvalidOperation as exc:  # pragma: no cover - excluded by the checks
            raise api_error([f"{self.wire_name} must be a number"]) from exc


class BooleanField(ApiField):
    def checks(self) -> list[tuple[str, Callable[[Any], bool], str]]:
        return [("type", lambda v: isinstance(v, bool), "{name} must be a boolean value")]


class ChoiceField(ApiField):
    def __init__(self, *, choices: Sequence[str], **kwargs: Any) -> None:
        self.choice_values = list(choices)
        super().__init__(**kwargs)

    def checks(self) -> list[tuple[str, Callable[[Any], bool], str]]:
        values = self.choice_values
        return [
            (
                "choice",
                lambda v: isinstance(v, str) and v in values,
                "{name} must be one of the following values: " + ", ".join(values),
            )
        ]


_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and bool(_UUID_RE.match(value))


class UUIDField(ApiField):
    def checks(self) -> list[tuple[str, Callable[[Any], bool], str]]:
        return [("uuid", is_uuid, "{name} must be a UUID")]

    def convert(self, value: Any) -> uuid.UUID:
        return uuid.UUID(value)


# ASCII digits only (``[0-9]``, not ``\d``, which would take any Unicode digit); ``\Z``, not
# ``$``, which would also match before a trailing newline.
_ISO_DATE_RE = re.compile(
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])?)?\Z"
)

OUTSIDE_CALENDAR_MESSAGE = "{name} must be a date between 0001-01-01 and 9999-12-31 (UTC)"


class OutsideCalendar(ValueError):
    """A well-formed ISO 8601 instant whose UTC date is before year 1 or after year 9999
    (``9999-12-31T23:00:00-01:00``): Python's and the database's calendars end there."""


def parse_iso_instant(value: Any) -> datetime | date | None:
    """A plain date, or an aware date-time in UTC; None if not ISO 8601.

    A date-time without an offset is read as UTC, as the original does on a UTC server.
    Raises OutsideCalendar when the instant exists only outside the calendar.
    """
    if not isinstance(value, str) or not _ISO_DATE_RE.match(value):
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise OutsideCalendar(value) from exc


def parse_iso_date(value: Any) -> date | None:
    """An ISO 8601 date or date-time, reduced to its UTC calendar date (None if invalid or
    outside the calendar)."""
    try:
        parsed = parse_iso_instant(value)
    except OutsideCalendar:
        return None
    return parsed.date() if isinstance(parsed, datetime) else parsed


def is_outside_calendar(value: Any) -> bool:
    try:
        parse_iso_instant(value)
    except OutsideCalendar:
        return True
    return False


class IsoDateField(ApiField):
    """``YYYY-MM-DD`` or an ISO 8601 date-time; the value is its UTC date."""

    def checks(self) -> list[tuple[str, Callable[[Any], bool], str]]:
        return [
            (
                "date",
                lambda v: parse_iso_date(v) is not None or is_outside_calendar(v),
                "{name} must be a valid ISO 8601 date string",
            ),
            ("calendar", lambda v: not is_outside_calendar(v), OUTSIDE_CALENDAR_MESSAGE),
        ]

    def convert(self, value: Any) -> date:
        parsed = parse_iso_date(value)
        assert parsed is not None
        return parsed


class IntArrayField(ApiField):
    """An array of integers (weekdays and the like), optionally unique and non-empty."""

    def __init__(
        self,
        *,
        min_size: int | None = None,
        min_value: int | None = None,
        max_value: int | None = None,
        unique: bool = False,
        **kwargs: Any,
    ) -> None:
        self.min_size = min_size
        self.min_value = min_value
        self.max_value = max_value
        self.unique = unique
        super().__init__(**kwargs)

    def checks(self) -> list[tuple[str, Callable[[Any], bool], str]]:
        def each(pred: Callable[[Any], bool]) -> Callable[[Any], bool]:
            return lambda v: isinstance(v, list) and all(pred(x) for x in v)

        out: list[tuple[str, Callable[[Any], bool], str]] = []
        if self.unique:
            out.append(
                (
                    "unique",
                    lambda v: not isinstance(v, list) or len({repr(x) for x in v}) == len(v),
                    "{name} must not contain duplicate values",
                )
            )
        if self.max_value is not None:
            hi = self.max_value
            out.append(
                (
                    "max",
                    each(lambda x: is_number(x) and x <= hi),
                    "each value in {name} must not be greater than %d" % hi,
                )
            )
        if self.min_value is not None:
            lo = self.min_value
            out.append(
                (
                    "min",
                    each(lambda x: is_number(x) and x >= lo),
                    "each value in {name} must not be less than %d" % lo,
                )
            )
        out.append(("type", each(is_int), "each value in {name} must be an integer number"))
        if self.min_size is not None:
            size = self.min_size
            out.append(
                (
                    "min_size",
                    lambda v: isinstance(v, list) and len(v) >= size,
                    "{name} must contain at least %d elements" % size,
                )
            )
        out.append(("array", lambda v: isinstance(v, list), "{name} must be an array"))
        return out


class ApiDateTimeField(serializers.DateTimeField):
    """Output: ISO 8601 UTC with milliseconds and ``Z`` (JavaScript's ``toISOString``)."""

    def to_representation(self, value: Any) -> Any:
        if value is None:
            return None
        return iso_ms(value)


def json_number(value: Decimal) -> int | float:
    """A decimal as a JSON number; integral values print without a fraction, like JavaScript
    (18.00 → 18, 15.50 → 15.5)."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


class JsonNumberField(serializers.FloatField):
    """Output: a decimal as JavaScript prints the number (``json_number``): money and the
    figures computed from it. In the schema, a ``number``."""

    def to_representation(self, value: Any) -> Any:
        return json_number(Decimal(value))


def iso_ms(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_path_uuid(value: str) -> uuid.UUID:
    """A ``:id`` path parameter: any 8-4-4-4-12 hex UUID, else the original's 400 text."""
    from chefops.api.errors import BadRequest

    if not is_uuid(value):
        raise BadRequest("Validation failed (uuid is expected)")
    return uuid.UUID(value)
