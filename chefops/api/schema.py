"""The OpenAPI schema documents what the server does, derived from the views themselves.

drf-spectacular describes the success responses and the serializers; the rest of what a client
can get back is the same for every view and follows from how the view is built, so it is
derived here instead of being written by hand on ~40 operations (``AutoSchema``, the
``DEFAULT_SCHEMA_CLASS``):

- **400** on every operation: the request guard refuses a bad request line on every ``/api``
  route (a NUL character or non-UTF-8 bytes in the query, too many query parameters), besides
  the checks of a path id, the query parameters and the body.
- **401** when the view authenticates: ``{"message": "Unauthorized", "statusCode": 401}``
  exactly, without ``error`` (SPEC §1). Operations whose service refuses credentials itself
  (login, refresh, change-password) declare 401 with ``errors(401)``: that 401 carries the
  general error shape, so such an operation documents both.
- **403** when a permission class can refuse the caller's role or company type for this
  method; services that refuse a party or a role declare it with ``errors(403)``.
- **404** when the path has an id (unknown id, or an id of another tenant).
- **413** and **415** when the operation reads a JSON body (over 256 KiB; not JSON).
- **429** when the view has throttles (with ``Retry-After``).
- 409 and the domain errors above that the view alone does not reveal are declared on the view
  with ``errors(...)``; every 4xx is then rendered from the components of
  ``add_error_components`` (the postprocessing hook), whatever the declaration said.

Beside the responses: path ids are ``format: uuid`` (anything else is a 400), every list
documents ``page``/``limit`` with their bounds, request bodies of strict serializers are closed
(``additionalProperties: false``: an unknown key is a 400), and each operation has one
security requirement.

Not expressible, and left to the fuzz test's configuration and the field descriptions: the
server also refuses NUL characters and unpaired surrogates in any string, JSON nested deeper
than 32 levels, and rules across fields (``endDate >= startDate``, at most 366 days per
generation); each of these is a documented 400.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import SAFE_METHODS

from chefops.api.pagination import PagePagination
from chefops.api.serializers import StrictSerializer

ERROR = "Error"
AUTHENTICATION_ERROR = "AuthenticationError"

# 4xx responses of the components section, by status code.
RESPONSE_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    429: "TooManyRequests",
    503: "ServiceUnavailable",
}
# A 401 raised by a service (wrong password, invalid refresh token): the general shape.
CREDENTIALS_REFUSED = "CredentialsRefused"
# Both kinds of 401 on one authenticated operation (change-password).
UNAUTHORIZED_OR_REFUSED = "UnauthorizedOrCredentialsRefused"

_DECLARED = "Declared with chefops.api.schema.errors(); rendered by the schema hooks."


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Error statuses a view's services can answer that ``AutoSchema`` cannot derive (a 409, a
    403 of a party check, a 404 of an id in the body, a 401 of refused credentials). Only the
    code matters: the response itself comes from the components."""
    unknown = set(codes) - set(RESPONSE_NAMES)
    assert not unknown, f"no error response component for {sorted(unknown)}"
    return {code: OpenApiResponse(description=_DECLARED) for code in codes}


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _refuses_members(permission: Any, view: Any, method: str) -> bool:
    """Whether a permission class can refuse an authenticated member of a company (a 403)."""
    from chefops.api import permissions

    if isinstance(permission, permissions.RolesByMethod):
        default = permissions.MEMBERS if method in SAFE_METHODS else permissions.ADMINS
        roles = getattr(view, "roles_by_method", {}).get(method, default)
        return set(roles) != set(permissions.MEMBERS)
    if isinstance(permission, permissions._RolePermission):
        return set(permission.roles) != set(permissions.MEMBERS)
    return isinstance(permission, permissions._CompanyTypePermission)


# What PagePagination.get_paginated_response adds to a page (the body stays an array).
LIST_HEADERS = {
    "X-Total-Count": {
        "description": "Items in the whole list (every page).",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Link": {
        "description": 'RFC 8288 links to the first, prev, next and last pages (rel="...").',
        "schema": {"type": "string"},
    },
}

# drf-spectacular's order of an operation's keys (parameters before the responses).
_KEY_ORDER = (
    "operationId",
    "description",
    "summary",
    "parameters",
    "tags",
    "requestBody",
    "security",
    "responses",
)


def _key_rank(key: str) -> int:
    return _KEY_ORDER.index(key) if key in _KEY_ORDER else len(_KEY_ORDER)


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema plus the derived error responses, uuid path ids, paging
    parameters and closed request bodies (see the module docstring)."""

    def get_operation(
        self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any
    ) -> dict[str, Any] | None:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
        for parameter in parameters:
            if parameter["in"] == "path" and parameter["name"].endswith("_id"):
                parameter["schema"] = {"type": "string", "format": "uuid"}
                parameter.setdefault("description", "An id (UUID); anything else is a 400.")
        if self._is_list(operation):
            names = {p["name"] for p in parameters if p["in"] == "query"}
            parameters.extend(
                p
                for p in PagePagination().get_schema_operation_parameters(self.view)
                if p["name"] not in names
            )
            operation["responses"]["200"]["headers"] = LIST_HEADERS
        if not parameters:
            del operation["parameters"]
        # One requirement per operation (the authentication extension registers the scheme).
        if "security" in operation:
            unique: list[dict[str, Any]] = []
            for requirement in operation["security"]:
                if requirement not in unique:
                    unique.append(requirement)
            operation["security"] = unique
        operation["responses"] = self._with_error_responses(operation)
        return {key: operation[key] for key in sorted(operation, key=_key_rank)}

    @staticmethod
    def _is_list(operation: dict[str, Any]) -> bool:
        ok = operation.get("responses", {}).get("200", {})
        schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
        return schema.get("type") == "array"

    def _error_codes(self, operation: dict[str, Any], declared: set[int]) -> set[int]:
        # 503: the database is unreachable (every operation reads it, the health probes too).
        codes = {400, 503, *declared}
        authenticates = bool(self.view.get_authenticators())
        if authenticates:
            codes.add(401)
        if any(_refuses_members(p, self.view, self.method) for p in self.view.get_permissions()):
            codes.add(403)
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            codes.add(404)
        if "requestBody" in operation:
            codes.update({413, 415})
        if self.view.get_throttles():
            codes.add(429)
        return codes

    def _with_error_responses(self, operation: dict[str, Any]) -> dict[str, Any]:
        responses: dict[str, Any] = operation["responses"]
        declared = {int(code) for code in responses if code.startswith("4")}
        kept = {code: r for code, r in responses.items() if not code.startswith("4")}
        authenticates = bool(self.view.get_authenticators())
        for code in sorted(self._error_codes(operation, declared)):
            if str(code) in kept:  # the view documents its own (health: its own 503 body)
                continue
            name = RESPONSE_NAMES[code]
            if code == 401 and 401 in declared:
                name = UNAUTHORIZED_OR_REFUSED if authenticates else CREDENTIALS_REFUSED
            kept[str(code)] = _ref("responses", name)
        return dict(sorted(kept.items()))

    def _map_basic_serializer(self, serializer: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and isinstance(serializer, StrictSerializer):
            # Unknown keys are refused (`property x should not exist`).
            schema["additionalProperties"] = False
        return schema


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "Every API error but the authentication's 401: `message` is an array of readable "
            "strings naming each field for validation errors, else one string."
        ),
        "properties": {
            "message": {
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
            },
            "error": {"type": "string", "description": "HTTP reason phrase, e.g. Bad Request."},
            "statusCode": {"type": "integer", "minimum": 400, "maximum": 599},
        },
        "required": ["message", "error", "statusCode"],
    }


def _authentication_error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A missing, malformed, expired or revoked bearer token (no `error` key).",
        "properties": {
            "message": {"type": "string", "enum": ["Unauthorized"]},
            "statusCode": {"type": "integer", "enum": [401]},
        },
        "required": ["message", "statusCode"],
        "additionalProperties": False,
    }


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


def _error_responses() -> dict[str, Any]:
    error = _ref("schemas", ERROR)
    authentication = _ref("schemas", AUTHENTICATION_ERROR)
    return {
        "BadRequest": _json(
            error,
            "Invalid input: a path id that is not a UUID, a query parameter or body field that "
            "breaks its rules, text with a NUL character or an unpaired surrogate, malformed or "
            "too deeply nested JSON, or a rule across fields.",
        ),
        "Unauthorized": _json(authentication, "Missing or invalid bearer token."),
        CREDENTIALS_REFUSED: _json(error, "The credentials or token sent were refused."),
        UNAUTHORIZED_OR_REFUSED: _json(
            {"oneOf": [authentication, error]},
            "Missing or invalid bearer token (no `error` key), or refused credentials.",
        ),
        "Forbidden": _json(error, "The caller's role or company may not do this."),
        "NotFound": _json(error, "No such resource visible to the caller."),
        "Conflict": _json(error, "Conflicts with existing data (duplicate, active pair)."),
        "PayloadTooLarge": _json(error, "Request body over 256 KiB."),
        "UnsupportedMediaType": _json(error, "The body is not `application/json`."),
        "TooManyRequests": _json(
            error,
            "Rate limited; retry after the seconds in `Retry-After`.",
            headers={"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
        ),
        "ServiceUnavailable": _json(
            error,
            "The database cannot be reached; retry after the seconds in `Retry-After`.",
            headers={"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
        ),
    }


def add_error_components(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: the error schemas and responses the operations refer to."""
    components = result.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas[ERROR] = _error_schema()
    schemas[AUTHENTICATION_ERROR] = _authentication_error_schema()
    components["schemas"] = dict(sorted(schemas.items()))
    components["responses"] = _error_responses()
    return result
