"""The OpenAPI schema says what the server does (chefops/api/schema.py): error responses on
every operation, uuid path ids, paging on every list, closed request bodies, one security
requirement, and the error bodies the server really sends match the documented shapes."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from rest_framework.test import APIClient

from chefops.api.fields import DB_INT_MAX
from chefops.api.pagination import MAX_LIMIT, MAX_PAGE
from chefops.testing.cast import Cast

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def schema(django_db_blocker: Any) -> dict[str, Any]:
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema?format=json")
    assert response.status_code == 200
    return dict(response.json())


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = schema["components"][kind][name]
    return node


def _response_schema(schema: dict[str, Any], operation: dict[str, Any], status: int) -> Any:
    response = _resolve(schema, operation["responses"][str(status)])
    return response["content"]["application/json"]["schema"]


def _validator(schema: dict[str, Any], node: dict[str, Any]) -> jsonschema.Draft4Validator:
    # OpenAPI 3.0 schemas are (close enough to) draft 4; the refs point into the document.
    document = {**node, "components": schema["components"]}
    return jsonschema.Draft4Validator(document)


def test_every_operation_documents_its_error_responses(schema: dict[str, Any]) -> None:
    for path, method, operation in _operations(schema):
        codes = {int(code) for code in operation["responses"]}
        where = f"{method.upper()} {path}"
        assert 400 in codes, where  # the request guard answers any /api route
        if operation.get("security"):
            assert 401 in codes, where
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            assert 404 in codes, where
        if "requestBody" in operation:
            assert {413, 415} <= codes, where
        for code in codes:
            if 400 <= code < 500:
                assert "$ref" in operation["responses"][str(code)], where


def test_derived_statuses_follow_the_views(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    # Throttled public routes: 429; role-restricted methods: 403; readers of every member: no 403.
    assert "429" in paths["/api/auth/login"]["post"]["responses"]
    assert "429" in paths["/api/caterings"]["post"]["responses"]
    assert "429" not in paths["/api/caterings"]["get"]["responses"]
    assert "403" in paths["/api/users"]["post"]["responses"]
    # a company-type guard (CLIENT only) documents its 403; finance metrics serve either type
    assert "403" in paths["/api/contracts/{contractId}/pause"]["post"]["responses"]
    assert "403" not in paths["/api/contracts/finance-metrics"]["get"]["responses"]
    assert "403" not in paths["/api/users"]["get"]["responses"]
    assert "401" not in paths["/api/caterings"]["post"]["responses"]  # public registration


def test_401_shapes(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    bearer = paths["/api/users"]["get"]["responses"]["401"]
    refused = paths["/api/auth/login"]["post"]["responses"]["401"]
    both = paths["/api/auth/change-password"]["post"]["responses"]["401"]
    assert bearer == {"$ref": "#/components/responses/Unauthorized"}
    assert refused == {"$ref": "#/components/responses/CredentialsRefused"}
    assert both == {"$ref": "#/components/responses/UnauthorizedOrCredentialsRefused"}
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"message", "error", "statusCode"}
    authentication = schema["components"]["schemas"]["AuthenticationError"]
    assert set(authentication["required"]) == {"message", "statusCode"}
    assert "error" not in authentication["properties"]


def test_path_ids_are_uuids(schema: dict[str, Any]) -> None:
    for path, method, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert parameter["schema"] == {"type": "string", "format": "uuid"}, (
                    method,
                    path,
                    parameter,
                )


def test_every_list_documents_paging(schema: dict[str, Any]) -> None:
    lists = []
    for path, _method, operation in _operations(schema):
        ok = operation["responses"].get("200", {}).get("content", {})
        if ok.get("application/json", {}).get("schema", {}).get("type") != "array":
            continue
        lists.append(path)
        query = {p["name"]: p["schema"] for p in operation["parameters"] if p["in"] == "query"}
        assert query["page"] == {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, path
        assert query["limit"] == {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, path
    assert {
        "/api/users",
        "/api/clients",
        "/api/caterings",
        "/api/contracts",
        "/api/contracts/{contractId}/service-days",
    } <= set(lists)


def test_request_bodies_are_closed_and_bounded(schema: dict[str, Any]) -> None:
    bodies = [
        _resolve(schema, operation["requestBody"]["content"]["application/json"]["schema"])
        for _, _, operation in _operations(schema)
        if "requestBody" in operation
    ]
    assert bodies
    for body in bodies:
        assert body["additionalProperties"] is False, body
    components = schema["components"]["schemas"]
    # Integers carry the int4 bound the server enforces; required text its non-empty rule.
    assert components["ConfirmExpectedInputRequest"]["properties"]["expectedQuantity"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": DB_INT_MAX,
    }
    assert components["CateringCreateInputRequest"]["properties"]["name"]["minLength"] == 1
    assert components["ChangePasswordInputRequest"]["properties"]["oldPassword"]["minLength"] == 1


def test_one_security_requirement_per_operation(schema: dict[str, Any]) -> None:
    for path, method, operation in _operations(schema):
        assert len(operation.get("security", [])) <= 1, (method, path)
    assert schema["paths"]["/api/users"]["get"]["security"] == [{"bearerAuth": []}]
    assert "security" not in schema["paths"]["/api/auth/login"]["post"]


@pytest.mark.django_db
def test_real_error_bodies_match_the_documented_shapes(schema: dict[str, Any], cast: Cast) -> None:
    paths = schema["paths"]

    def check(path: str, method: str, status: int, body: Any) -> None:
        node = _response_schema(schema, paths[path][method], status)
        _validator(schema, node).validate(body)

    anonymous = APIClient().get("/api/users")
    assert anonymous.status_code == 401
    check("/api/users", "get", 401, anonymous.json())
    error_only = _validator(schema, {"$ref": "#/components/schemas/Error"})
    assert not error_only.is_valid(anonymous.json())  # no `error` key: not the general shape

    admin = cast.api(cast.client.admin)
    invalid = admin.patch(
        f"/api/clients/{cast.client.company.pk}", {"name": "", "bogus": 1}, format="json"
    )
    assert invalid.status_code == 400
    assert isinstance(invalid.json()["message"], list)
    check("/api/clients/{companyId}", "patch", 400, invalid.json())

    not_found = admin.get("/api/users/00000000-0000-4000-8000-000000000000")
    assert not_found.status_code == 404
    check("/api/users/{userId}", "get", 404, not_found.json())

    refused = APIClient().post(
        "/api/auth/login", {"email": "nobody@example.com", "password": "whatever"}, format="json"
    )
    assert refused.status_code == 401
    check("/api/auth/login", "post", 401, refused.json())


def test_every_operation_documents_the_database_outage(schema: dict[str, Any]) -> None:
    """503 when the database cannot be reached: the error shape with Retry-After, except the
    health probes, which answer their own body."""
    for path, method, operation in _operations(schema):
        response = _resolve(schema, operation["responses"]["503"])
        body = response["content"]["application/json"]["schema"]
        if path.startswith("/api/health"):
            assert "Health" in body["$ref"] or "Readiness" in body["$ref"], path
        else:
            assert body == {"$ref": "#/components/schemas/Error"}, f"{method} {path}"
            assert "Retry-After" in response["headers"]
