"""Hot read paths that answer straight from a database cursor as JSON-ready text.

A page of rows turned into model instances and back into strings spent most of its CPU in
that round trip (Django's Python timestamp loader, ``Model.__init__``, ``isoformat``). The
helpers below let a raw statement select columns in their JSON form instead, identically on
PostgreSQL and SQLite:

* timestamps: PostgreSQL formats them with ``to_char`` (UTC, milliseconds truncated, as
  ``chefops.api.fields.iso_ms``); on SQLite the driver's converter (registered by Django)
  returns naive UTC datetimes, which ``iso_ms_text`` formats;
* UUIDs: native on PostgreSQL, 32 hex digits on SQLite; dates: ``date`` or ISO text.

Statements are built once per database vendor by ``VendorSql``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from django.db import connection

from chefops.api.fields import iso_ms

_PG_ISO_MS = 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'


def iso_ms_sql(column: str) -> str:
    """A timestamp column as JavaScript ``toISOString()`` text (finished by ``iso_ms_text``)."""
    if connection.vendor == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', '{_PG_ISO_MS}')"
    return column


def iso_ms_text(value: str | datetime | None) -> str | None:
    """``iso_ms_sql`` output as ``2026-11-28T09:30:01.123Z`` (None stays None)."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:  # SQLite: naive UTC
        value = value.replace(tzinfo=UTC)
    return iso_ms(value)


def uuid_sql(column: str) -> str:
    """A UUID column as its canonical text on PostgreSQL (finished by ``uuid_text``)."""
    return f"{column}::text" if connection.vendor == "postgresql" else column


def uuid_text(value: Any) -> str:
    if type(value) is str and len(value) == 36:  # PostgreSQL's text: hundreds per page
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    text = str(value)
    return text if len(text) == 36 else str(uuid.UUID(text))


def as_uuid(value: Any) -> uuid.UUID:
    """An id read outside the ORM's converters (SQLite returns 32 hex characters)."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def date_sql(column: str) -> str:
    """A date column as ISO ``YYYY-MM-DD`` text on PostgreSQL (finished by ``date_text``),
    whatever the server's DateStyle."""
    if connection.vendor == "postgresql":
        return f"to_char({column}, 'YYYY-MM-DD')"
    return column


def date_text(value: date | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


class VendorSql:
    """A statement built on first use for each database vendor (the SQL differs slightly)."""

    def __init__(self, build: Callable[[], str]) -> None:
        self._build = build
        self._by_vendor: dict[str, str] = {}

    @property
    def sql(self) -> str:
        sql = self._by_vendor.get(connection.vendor)
        if sql is None:
            sql = self._by_vendor[connection.vendor] = self._build()
        return sql
