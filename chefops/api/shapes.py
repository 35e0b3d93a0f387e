"""One definition per response shape: the output serializer's declared fields.

A hot read builds its JSON straight from SQL rows, and the writes answer the same object from a
model instance; both used to be written out by hand beside the serializer that describes the
object in the OpenAPI schema, three forms that had to be kept equal. A ``Shape`` derives the
other two from the serializer: its fields, in order, with a conversion chosen by field type.

* ``select(alias, **expressions)``: the SQL select list, one column per field (a model field's
  column by default, an expression for annotations), in the form the row conversion expects
  (``chefops.api.sqltext``: UUIDs and timestamps as text on PostgreSQL);
* ``from_row(start)``: a function turning a row (from column ``start`` on) into the JSON-ready
  object with camelCase keys (a plain dict: the rows go in a ``CamelList``);
* ``represent(instance, serializer)``: the serializer's ``to_representation`` of a model
  instance (snake_case keys), equal to DRF's generic one (tests pin this);
* ``render(instance)``: the JSON object of any object the serializer reads by ``source``
  (``"*"`` included), nested serializers and lists of them included, with camelCase keys:
  the bodies computed in Python (weekly report, finance metrics), byte for byte DRF's
  rendering of the same serializer (tests pin this).

The functions are generated once per shape as plain Python (one dict display, one call per
converted value): a loop over the fields per value cost more than the rest of a page's
rendering. A field type without a known conversion is refused when the shape is first used,
so a new field cannot silently render differently on one path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

from django.db import connection, models
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from chefops.api.fields import JsonNumberField, iso_ms, json_number
from chefops.api.naming import to_camel
from chefops.api.renderers import CamelDict
from chefops.api.sqltext import (
    date_sql,
    date_text,
    iso_ms_sql,
    iso_ms_text,
    uuid_sql,
    uuid_text,
)


@dataclass(frozen=True)
class _Kind:
    """How one field type converts: from a model attribute, from a SQL column, and how the
    column is selected. ``None`` converters keep the value as it is."""

    from_instance: str | None
    from_row: str | None
    row_none_safe: bool = False
    select: Callable[[str], str] = str
    # PostgreSQL selects the column as its final JSON text (``select``): no conversion there.
    text_on_postgres: bool = False


_UUID = _Kind("str", "uuid_text", select=uuid_sql, text_on_postgres=True)
_INSTANT = _Kind(
    "iso_ms", "iso_ms_text", row_none_safe=True, select=iso_ms_sql, text_on_postgres=True
)
_DATE = _Kind("_isoformat", "date_text", row_none_safe=True, select=date_sql, text_on_postgres=True)
_FLOAT = _Kind("float", "float")
_JSON_NUMBER = _Kind("json_number", "json_number")
# A nested serializer (rendered by its own shape's function: ``render`` only).
_NESTED = _Kind(None, None)
_BOOL = _Kind(None, "bool")
_PLAIN = _Kind(None, None)

_HELPERS = {
    "str": str,
    "float": float,
    "json_number": json_number,
    "bool": bool,
    "iso_ms": iso_ms,
    "uuid_text": uuid_text,
    "iso_ms_text": iso_ms_text,
    "date_text": date_text,
    "_isoformat": date.isoformat,
}


def _kind(name: str, field: serializers.Field) -> _Kind:
    if isinstance(field, serializers.UUIDField):
        return _UUID
    if isinstance(field, serializers.DateTimeField):
        return _INSTANT
    if isinstance(field, serializers.DateField):
        date_format = getattr(field, "format", api_settings.DATE_FORMAT)
        if date_format not in (None, ISO_8601, "%Y-%m-%d"):
            raise TypeError(f"{name}: a DateField with format {date_format!r} has no fast form")
        return _DATE
    if isinstance(field, JsonNumberField):
        return _JSON_NUMBER
    if isinstance(field, serializers.FloatField):
        return _FLOAT
    if isinstance(field, serializers.BooleanField):
        return _BOOL
    if isinstance(
        field,
        serializers.IntegerField
        | serializers.CharField
        | serializers.ChoiceField
        | serializers.SerializerMethodField,
    ):
        return _PLAIN
    raise TypeError(f"{name}: no fast conversion for {type(field).__name__}")


@dataclass(frozen=True)
class _Field:
    name: str
    kind: _Kind
    nullable: bool
    source: str | None  # attribute, "*" for the object itself; None for a method field
    method: str | None  # serializer method of a SerializerMethodField
    nested: Shape | None = None  # a nested serializer's shape
    many: bool = False  # a list of ``nested``


class Shape:
    """The JSON object described by ``serializer_class`` (see the module docstring)."""

    def __init__(self, serializer_class: type[serializers.Serializer]) -> None:
        self.serializer_class = serializer_class
        self._row_functions: dict[tuple[str, int], Callable[[Sequence[Any]], dict[str, Any]]] = {}

    @cached_property
    def fields(self) -> list[_Field]:
        out = []
        for name, field in self.serializer_class().fields.items():
            method = getattr(field, "method_name", None)
            source = None if method else field.source
            if source is not None and not (source.isidentifier() or source == "*"):
                raise TypeError(f"{name}: the source {source!r} is not an attribute")
            nullable = bool(field.allow_null)
            if isinstance(field, serializers.ListSerializer):
                if not isinstance(field.child, serializers.Serializer):
                    raise TypeError(f"{name}: a list of {type(field.child).__name__}")
                child = Shape(type(field.child))
                out.append(_Field(name, _NESTED, nullable, source, None, child, many=True))
            elif isinstance(field, serializers.Serializer):
                out.append(_Field(name, _NESTED, nullable, source, None, Shape(type(field))))
            else:
                out.append(_Field(name, _kind(name, field), nullable, source, method))
        return out

    def _flat_fields(self, use: str) -> list[_Field]:
        """The fields, for a form that has no nested objects (SQL rows, model instances)."""
        for field in self.fields:
            if field.nested is not None or field.source == "*":
                raise TypeError(f"{field.name}: a nested object has no {use} form")
        return self.fields

    @cached_property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def index(self, name: str) -> int:
        """The position of ``name`` among the selected columns (and the object's keys)."""
        return self.names.index(name)

    def select(self, alias: str, **expressions: str) -> str:
        """The select list, in field order: ``expressions[name]`` for a field that is not a
        column of the serializer's model (annotations, method fields), else ``alias.column``.
        Call it while building a statement for the current database vendor (``VendorSql``)."""
        flat = self._flat_fields("SQL")
        meta: Any = self.serializer_class.Meta.model._meta  # type: ignore[attr-defined]
        columns = []
        for field in flat:
            expression = expressions.get(field.name)
            if expression is None:
                if field.source is None:
                    raise TypeError(f"{field.name}: a method field needs a SQL expression")
                model_field = meta.get_field(field.source)
                assert isinstance(model_field, models.Field)
                expression = f"{alias}.{model_field.column}"
            columns.append(field.kind.select(expression))
        unknown = set(expressions) - set(self.names)
        if unknown:
            raise TypeError(f"expressions for fields the shape does not have: {sorted(unknown)}")
        return ", ".join(columns)

    def from_row(self, start: int = 0) -> Callable[[Sequence[Any]], dict[str, Any]]:
        """A row of ``start`` other columns, then those of ``select``, as the object with
        camelCase keys. For the current database vendor, as ``select`` is. The rows of a
        response go in a ``CamelList``, which the renderer takes as it is: a plain dict per
        row, not a ``CamelDict``."""
        vendor = connection.vendor
        function = self._row_functions.get((vendor, start))
        if function is None:
            names = [f"_skip{n}" for n in range(start)] + [f"v{n}" for n in range(len(self.fields))]
            items = []
            for position, field in enumerate(self._flat_fields("row")):
                key = to_camel(field.name)
                guard = field.nullable and not field.kind.row_none_safe
                convert = field.kind.from_row
                if vendor == "postgresql" and field.kind.text_on_postgres:
                    convert = None
                items.append(f"{key!r}: {_call(convert, f'v{position}', guard)}")
            function = self._row_functions[vendor, start] = _compile(
                f"row_{start}",
                "row",
                # Unpacking beats a subscript per column, and checks the row's width.
                # A dict display: half the cost of CamelDict(**...) per row (issue #18).
                [f"{', '.join(names)}, = row", "return {" + ", ".join(items) + "}"],
            )
        return function

    @cached_property
    def _represent(self) -> Callable[[Any, Any], dict[str, Any]]:
        items = []
        for position, field in enumerate(self._flat_fields("instance")):
            if field.method is not None:
                items.append(f"{field.name!r}: serializer.{field.method}(instance)")
                continue
            converted = _converted(
                f"instance.{field.source}", field.kind.from_instance, field.nullable, position
            )
            items.append(f"{field.name!r}: {converted}")
        return _compile("represent", "serializer, instance", ["return {" + ", ".join(items) + "}"])

    def represent(self, instance: Any, serializer: Any = None) -> dict[str, Any]:
        """The serializer's representation of a model instance (snake_case keys);
        ``serializer`` answers the method fields, if there are any."""
        return self._represent(serializer, instance)

    @cached_property
    def _render(self) -> Callable[[Any], dict[str, Any]]:
        items = []
        nested: dict[str, Any] = {}
        for position, field in enumerate(self.fields):
            if field.method is not None:
                raise TypeError(f"{field.name}: a method field has no rendered form")
            value = "instance" if field.source == "*" else f"instance.{field.source}"
            convert = field.kind.from_instance
            if field.nested is not None:
                convert = f"_nested{position}"
                nested[convert] = field.nested._render
                if field.many:
                    # A list: its items through the child's function, in one comprehension.
                    list_of = f"_list{position}"
                    nested[list_of] = _list_renderer(field.nested._render)
                    convert = list_of
            converted = _converted(value, convert, field.nullable, position)
            items.append(f"{to_camel(field.name)!r}: {converted}")
        return _compile("render", "instance", ["return {" + ", ".join(items) + "}"], nested)

    def render(self, instance: Any) -> CamelDict:
        """The JSON object of ``instance`` with camelCase keys, nested serializers included:
        what DRF's ``serializer_class(instance).data`` gives once camelized (tests pin this),
        without DRF's per-field machinery (a weekly report: ~500 µs there)."""
        return CamelDict(self._render(instance))


def _list_renderer(item: Callable[[Any], dict[str, Any]]) -> Callable[[Any], list[Any]]:
    def render_list(values: Any) -> list[Any]:
        return [item(value) for value in values]

    return render_list


def _converted(value: str, convert: str | None, nullable: bool, position: int) -> str:
    """``convert(value)``, null kept as null (the value evaluated once) when ``nullable``."""
    if nullable and convert is not None:
        temp = f"v{position}"
        return f"(None if ({temp} := {value}) is None else {convert}({temp}))"
    return _call(convert, value, guard=False)


def _call(convert: str | None, value: str, guard: bool) -> str:
    if convert is None:
        return value
    if guard:
        return f"(None if {value} is None else {convert}({value}))"
    return f"{convert}({value})"


def _compile(name: str, params: str, body: list[str], helpers: dict[str, Any] | None = None) -> Any:
    source = f"def {name}({params}):\n" + "".join(f"    {line}\n" for line in body)
    namespace = {**_HELPERS, **(helpers or {})}
    # The source is generated above from the serializer's field names and this module's
    # converters, never from input.
    exec(compile(source, f"<shape {name}>", "exec"), namespace)  # noqa: S102
    return namespace[name]
