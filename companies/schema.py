"""OpenAPI mappings for the project's strict input fields and the JWT authentication.

drf-spectacular cannot guess the type of a custom ``serializers.Field``; these extensions map
each ``chefops.api.fields`` class (and subclasses) to its JSON schema so the schema validates
without warnings. Imported from CompaniesConfig.ready().
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.plumbing import build_array_type, build_basic_type
from drf_spectacular.types import OpenApiTypes

from chefops.api import fields

# fields.EmailField refuses longer addresses (RFC 5321's limit).
EMAIL_MAX_LENGTH = 254


def _schema_for(field: Any) -> dict[str, Any]:
    """The JSON schema of what ``field`` accepts: the same bounds its checks apply, so a value
    the schema allows is not refused for its own sake (rules across fields aside)."""
    if isinstance(field, fields.EmailField):
        return {"type": "string", "format": "email", "maxLength": EMAIL_MAX_LENGTH}
    if isinstance(field, fields.StringField):
        schema: dict[str, Any] = {"type": "string"}
        min_length = max(field.min_length or 0, 1 if field.not_empty else 0)
        if min_length:
            schema["minLength"] = min_length
        if field.max_length is not None:
            schema["maxLength"] = field.max_length
        return schema
    if isinstance(field, fields.IntegerField):
        # Without a bound of its own, the range of the `integer` column applies.
        return {
            "type": "integer",
            "minimum": fields.DB_INT_MIN if field.min_value is None else field.min_value,
            "maximum": fields.DB_INT_MAX if field.max_value is None else field.max_value,
        }
    if isinstance(field, fields.MoneyField):
        return {
            "type": "number",
            "minimum": field.min_value,
            "maximum": float(fields.MAX_MONEY),
            "description": "Rounded half-up to cents.",
        }
    if isinstance(field, fields.ChoiceField):
        return {"type": "string", "enum": list(field.choice_values)}
    if isinstance(field, fields.UUIDField):
        return {"type": "string", "format": "uuid"}
    if isinstance(field, fields.IsoDateField):
        return {
            "type": "string",
            "format": "date",
            "description": "YYYY-MM-DD, or an ISO 8601 date-time (its UTC date counts).",
        }
    if isinstance(field, fields.IntArrayField):
        item: dict[str, Any] = {
            "type": "integer",
            "minimum": fields.DB_INT_MIN if field.min_value is None else field.min_value,
            "maximum": fields.DB_INT_MAX if field.max_value is None else field.max_value,
        }
        array = build_array_type(item)
        if field.min_size is not None:
            array["minItems"] = field.min_size
        if field.unique:
            array["uniqueItems"] = True
        return array
    if isinstance(field, fields.BooleanField) or type(field).__name__ == "LenientBooleanField":
        return build_basic_type(OpenApiTypes.BOOL) or {"type": "boolean"}
    return {"type": "string"}


class ApiFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "chefops.api.fields.ApiField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = _schema_for(self.target)
        if getattr(self.target, "allow_null", False):
            schema["nullable"] = True
        return schema


class JWTAuthenticationExtension(OpenApiAuthenticationExtension):
    target_class = "companies.authentication.JWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
