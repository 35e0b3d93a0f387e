"""The shared API conventions of SPEC §1, exercised through a probe API and real routes."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from rest_framework.test import APIClient

pytestmark = [pytest.mark.django_db, pytest.mark.urls("chefops.tests.probe_urls")]


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def post_json(client: APIClient, path: str, body: object, **headers: Any) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", **headers)


VALID = {"displayName": "Delicias", "dailyCapacity": 10}


def test_camel_case_round_trip(client: APIClient) -> None:
    res = post_json(
        client,
        "/api/probe/echo",
        {**VALID, "pricePerService": 12.345, "officeDays": [5, 1], "startDate": "2026-12-01"},
    )
    assert res.status_code == 201
    assert res["Content-Type"] == "application/json; charset=utf-8"
    body = res.json()
    assert body == {
        "displayName": "Delicias",
        "dailyCapacity": 10,
        "pricePerService": 12.35,  # rounded half-up to cents, still a JSON number
        "officeDays": [5, 1],
        "startDate": "2026-12-01",
        "nestedValue": {"innerKey": 1},
    }


def test_validation_error_lists_every_message_in_order(client: APIClient) -> None:
    res = post_json(client, "/api/probe/echo", {"bogus": 1, "daily_capacity": 3})
    assert res.status_code == 400
    assert res.json() == {
        "message": [
            "property bogus should not exist",
            "property daily_capacity should not exist",
            "displayName should not be empty",
            "displayName must be a string",
            "dailyCapacity must not be less than 1",
            "dailyCapacity must be an integer number",
        ],
        "error": "Bad Request",
        "statusCode": 400,
    }


@pytest.mark.parametrize(
    ("field", "value", "messages"),
    [
        (
            "dailyCapacity",
            "30",
            ["dailyCapacity must not be less than 1", "dailyCapacity must be an integer number"],
        ),
        (
            "dailyCapacity",
            True,
            ["dailyCapacity must not be less than 1", "dailyCapacity must be an integer number"],
        ),
        ("dailyCapacity", 2.5, ["dailyCapacity must be an integer number"]),
        (
            "pricePerService",
            "10",
            [
                "pricePerService must not be less than 0",
                "pricePerService must be a number conforming to the specified constraints",
            ],
        ),
        ("pricePerService", 1e12, ["pricePerService must not be greater than 9999999999.99"]),
        ("isOpen", "true", ["isOpen must be a boolean value"]),
        ("isOpen", 1, ["isOpen must be a boolean value"]),
        ("startDate", "", ["startDate must be a valid ISO 8601 date string"]),
        ("startDate", "23-11-2026", ["startDate must be a valid ISO 8601 date string"]),
        ("startDate", "2026-02-30", ["startDate must be a valid ISO 8601 date string"]),
        ("officeDays", [1, 1], ["officeDays must not contain duplicate values"]),
        ("officeDays", [], ["officeDays must contain at least 1 elements"]),
        (
            "officeDays",
            [0, 8, "x"],
            [
                "each value in officeDays must not be greater than 7",
                "each value in officeDays must not be less than 1",
                "each value in officeDays must be an integer number",
            ],
        ),
        (
            "officeDays",
            "1",
            [
                "each value in officeDays must not be greater than 7",
                "each value in officeDays must not be less than 1",
                "each value in officeDays must be an integer number",
                "officeDays must contain at least 1 elements",
                "officeDays must be an array",
            ],
        ),
    ],
)
def test_no_silent_coercion(
    client: APIClient, field: str, value: object, messages: list[str]
) -> None:
    res = post_json(client, "/api/probe/echo", {**VALID, field: value})
    assert res.status_code == 400
    assert res.json()["message"] == messages


def test_date_time_with_offset_is_reduced_to_its_utc_date(client: APIClient) -> None:
    res = post_json(client, "/api/probe/echo", {**VALID, "startDate": "2026-12-01T23:30:00-05:00"})
    assert res.status_code == 201
    assert res.json()["startDate"] == "2026-12-02"


def test_malformed_json_and_non_object_bodies_are_400(client: APIClient) -> None:
    res = client.post("/api/probe/echo", data="not json", content_type="application/json")
    assert res.status_code == 400
    assert res.json()["error"] == "Bad Request"
    assert isinstance(res.json()["message"], str)
    res = post_json(client, "/api/probe/echo", [1, 2])
    assert res.status_code == 400
    assert res.json()["message"] == ["Request body must be a JSON object"]


def test_query_parameters_are_strict(client: APIClient) -> None:
    assert client.get("/api/probe/echo?weekStart=2026-11-23").json() == {"weekStart": "2026-11-23"}
    res = client.get("/api/probe/echo?weekStart=2026-11-23&x=1")
    assert res.status_code == 400
    assert res.json()["message"] == ["property x should not exist"]
    res = client.get("/api/probe/echo")
    assert res.json()["message"] == ["weekStart must be a valid ISO 8601 date string"]


def test_error_bodies_for_403_404_409_429_500(client: APIClient, caplog) -> None:
    res = client.get("/api/probe/fail/forbidden")
    assert (res.status_code, res.json()) == (
        403,
        {"message": "Only an ADMIN may do this", "error": "Forbidden", "statusCode": 403},
    )
    res = client.get("/api/probe/fail/conflict")
    assert res.json() == {"message": "Already exists", "error": "Conflict", "statusCode": 409}
    res = client.get("/api/probe/fail/throttled")
    assert res.status_code == 429
    assert res["Retry-After"] == "13"
    assert res.json()["error"] == "Too Many Requests"
    with caplog.at_level(logging.ERROR, logger="chefops.api"):
        res = client.get("/api/probe/fail/crash")
    assert res.status_code == 500
    assert res.json() == {"statusCode": 500, "message": "Internal server error"}
    assert "secret internals" not in res.content.decode()
    assert any("boom: secret internals" in (r.exc_text or "") for r in caplog.records)


def test_401_shape_for_missing_and_bad_tokens(client: APIClient) -> None:
    for authorization in (None, "Bearer invalid-token", "Basic abc", "Bearer a.b.c"):
        if authorization:
            client.credentials(HTTP_AUTHORIZATION=authorization)
        res = client.get("/api/probe/private")
        assert res.status_code == 401
        assert res.json() == {"message": "Unauthorized", "statusCode": 401}


def test_unknown_route_and_wrong_method_are_404_json_without_auth(client: APIClient) -> None:
    res = client.get("/api/non-existent-endpoint")
    assert res.status_code == 404
    assert res.json() == {
        "message": "Cannot GET /api/non-existent-endpoint",
        "error": "Not Found",
        "statusCode": 404,
    }
    res = client.delete("/api/health")
    assert res.status_code == 404
    assert res.json()["message"] == "Cannot DELETE /api/health"
    res = client.post("/api")
    assert res.json()["message"] == "Cannot POST /api"


def test_trailing_slash_is_served_without_redirect(client: APIClient) -> None:
    res = post_json(client, "/api/probe/echo/", VALID)
    assert res.status_code == 201
    assert client.get("/api/health/").status_code == 200


def test_pagination_headers_and_array_body(client: APIClient) -> None:
    res = client.get("/api/probe/items")
    assert res.status_code == 200
    assert len(res.json()) == 100
    assert res.json()[0] == {"itemNumber": 1}
    assert res["X-Total-Count"] == "250"
    assert 'rel="next"' in res["Link"] and "page=2" in res["Link"]
    res = client.get("/api/probe/items?page=3&limit=100")
    assert [row["itemNumber"] for row in res.json()] == list(range(201, 251))
    assert 'rel="prev"' in res["Link"] and 'rel="next"' not in res["Link"]
    assert "page=3" in res["Link"].split('rel="last"')[0].rsplit("<", 1)[1]
    res = client.get("/api/probe/items?limit=500")
    assert len(res.json()) == 250
    for bad in ("limit=501", "limit=0", "page=0", "page=abc"):
        res = client.get(f"/api/probe/items?{bad}")
        assert res.status_code == 400, bad
        assert res.json()["statusCode"] == 400


def test_request_id_header(client: APIClient) -> None:
    res = client.get("/api/health", HTTP_X_REQUEST_ID="abc-123")
    assert res["X-Request-ID"] == "abc-123"
    generated = client.get("/api/health")["X-Request-ID"]
    assert len(generated) == 32
    assert client.get("/api/health", HTTP_X_REQUEST_ID="bad id\n")["X-Request-ID"] != "bad id\n"


def test_cors_preflight_allowed_and_refused_origins(client: APIClient) -> None:
    headers: dict[str, Any] = {
        "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST",
        "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "authorization,content-type",
    }
    res = client.options("/api/probe/echo", HTTP_ORIGIN="http://localhost:3001", **headers)
    assert res.status_code == 200
    assert res["Access-Control-Allow-Origin"] == "http://localhost:3001"
    allowed = res["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    res = client.options("/api/probe/echo", HTTP_ORIGIN="https://evil.example", **headers)
    assert "Access-Control-Allow-Origin" not in res


def test_openapi_schema_and_swagger_ui_are_served(client: APIClient) -> None:
    res = client.get("/api/schema?format=json")
    assert res.status_code == 200
    assert res.json()["openapi"].startswith("3.")
    res = client.get("/api/docs")
    assert res.status_code == 200
    assert b"swagger-ui" in res.content
    assert b"cdn.jsdelivr" not in res.content  # assets are self-hosted (sidecar)
