"""Helpers shared by the contract tests (the fixtures are in conftest.py)."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from chefops.testing.cast import Cast

ROLE_MESSAGE = "This action requires the ADMIN or MANAGER role"
DROP = object()  # create_body(cast, field=DROP) leaves the field out


def create_body(cast: Cast, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cateringCompanyId": str(cast.catering.company.id),
        "clientCompanyId": str(cast.client.company.id),
        "pricePerService": 15.5,
        "flexibleQuantity": True,
        "minDailyQuantity": 20,
        "maxDailyQuantity": 80,
        "noticePeriodHours": 24,
        "serviceDays": [1, 3, 5],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not DROP}


def post(client: APIClient, path: str, body: object = None) -> Any:
    """POST JSON; the test client's response (``.json()``, headers) is typed loosely."""
    response = client.post(path, body if body is not None else {}, format="json")
    assert response.status_code != 500, response.content
    return response


def get(client: APIClient, path: str) -> Any:
    response = client.get(path)
    assert response.status_code != 500, response.content
    return response


def error(status: int, message: str | list[str]) -> dict[str, Any]:
    reasons = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        409: "Conflict",
    }
    return {"message": message, "error": reasons[status], "statusCode": status}
