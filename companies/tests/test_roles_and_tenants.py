"""Role matrix (each route x each role) and the tenant cast (company A vs company B)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from chefops.testing.factories import TEST_PASSWORD, UserFactory
from companies.models import Company, User
from companies.tests.utils import error, login, patch, post

pytestmark = pytest.mark.django_db

ROLES = ["ADMIN", "MANAGER", "EMPLOYEE"]
ALL = set(ROLES)
ADMIN_ONLY = {"ADMIN"}

Call = Callable[[APIClient, Any], Any]


def _target_user(cast: Any) -> User:
    return UserFactory.create(company=cast.client.company, email="target@example.com")


ROUTES: list[tuple[str, set[str], int, Call]] = [
    ("GET /caterings", ALL, 200, lambda c, cast: c.get("/api/caterings")),
    (
        "GET /caterings/:id",
        ALL,
        200,
        lambda c, cast: c.get(f"/api/caterings/{cast.catering.company.id}"),
    ),
    ("GET /clients", ALL, 200, lambda c, cast: c.get("/api/clients")),
    ("GET /clients/:id", ALL, 200, lambda c, cast: c.get(f"/api/clients/{cast.client.company.id}")),
    (
        "PATCH /clients/:own",
        ADMIN_ONLY,
        200,
        lambda c, cast: patch(c, f"/api/clients/{cast.client.company.id}", {"name": "New name"}),
    ),
    (
        "DELETE /clients/:own",
        ADMIN_ONLY,
        200,
        lambda c, cast: c.delete(f"/api/clients/{cast.client.company.id}"),
    ),
    ("GET /users", ALL, 200, lambda c, cast: c.get("/api/users")),
    ("GET /users/:id", ALL, 200, lambda c, cast: c.get(f"/api/users/{cast.client.employee.id}")),
    (
        "POST /users",
        ADMIN_ONLY,
        201,
        lambda c, cast: post(
            c, "/api/users", {"email": "n@example.com", "name": "N", "role": "EMPLOYEE"}
        ),
    ),
    (
        "PATCH /users/:id",
        ADMIN_ONLY,
        200,
        lambda c, cast: patch(c, f"/api/users/{_target_user(cast).id}", {"name": "Changed"}),
    ),
    (
        "DELETE /users/:id",
        ADMIN_ONLY,
        200,
        lambda c, cast: c.delete(f"/api/users/{_target_user(cast).id}"),
    ),
    ("GET /auth/session-status", ALL, 200, lambda c, cast: c.get("/api/auth/session-status")),
    (
        "POST /auth/logout",
        ALL,
        200,
        lambda c, cast: post(c, "/api/auth/logout", {"refreshToken": "0" * 64}),
    ),
    (
        "POST /auth/change-password",
        ALL,
        200,
        lambda c, cast: post(
            c,
            "/api/auth/change-password",
            {
                "oldPassword": TEST_PASSWORD,
                "newPassword": "fresh-secret-456",
                "passwordConfirmation": "fresh-secret-456",
            },
        ),
    ),
]

CATERING_ROUTES: list[tuple[str, set[str], int, Call]] = [
    (
        "PATCH /caterings/:own",
        ADMIN_ONLY,
        200,
        lambda c, cast: patch(
            c, f"/api/caterings/{cast.catering.company.id}", {"dailyCapacity": 9}
        ),
    ),
    (
        "DELETE /caterings/:own",
        ADMIN_ONLY,
        200,
        lambda c, cast: c.delete(f"/api/caterings/{cast.catering.company.id}"),
    ),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("route", "allowed", "ok", "call"), ROUTES, ids=[r[0] for r in ROUTES])
def test_role_matrix_client_company(
    cast: Any, role: str, route: str, allowed: set[str], ok: int, call: Call
) -> None:
    res = call(cast.api(cast.client.user(role)), cast)
    if role in allowed:
        assert res.status_code == ok, (route, role, res.content)
    else:
        assert error(res) == (403, "This action requires the ADMIN role"), (route, role)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("route", "allowed", "ok", "call"), CATERING_ROUTES, ids=[r[0] for r in CATERING_ROUTES]
)
def test_role_matrix_catering_company(
    cast: Any, role: str, route: str, allowed: set[str], ok: int, call: Call
) -> None:
    res = call(cast.api(cast.catering.user(role)), cast)
    if role in allowed:
        assert res.status_code == ok, (route, role, res.content)
    else:
        assert error(res) == (403, "This action requires the ADMIN role"), (route, role)


@pytest.mark.parametrize(("route", "allowed", "ok", "call"), ROUTES, ids=[r[0] for r in ROUTES])
def test_every_protected_route_needs_a_token(
    cast: Any, route: str, allowed: set[str], ok: int, call: Call
) -> None:
    res = call(APIClient(), cast)
    assert (res.status_code, res.json()) == (401, {"message": "Unauthorized", "statusCode": 401})


@pytest.mark.parametrize("role", ROLES)
def test_company_a_cannot_change_company_b(cast: Any, role: str) -> None:
    """Every write route aimed at the other tenant fails; nothing of B changes."""
    actor = cast.client.user(role)  # company A = TechCorp
    other = cast.other_client  # company B = Startup Hub
    client = cast.api(actor)
    company_denial = (
        "You can only modify your own company"
        if role == "ADMIN"
        else "This action requires the ADMIN role"
    )
    b = other.company
    assert error(patch(client, f"/api/clients/{b.id}", {"name": "Hijacked"})) == (
        403,
        company_denial,
    )
    assert error(client.delete(f"/api/clients/{b.id}")) == (403, company_denial)
    assert error(patch(client, f"/api/caterings/{cast.catering.company.id}", {"name": "x"})) == (
        403,
        company_denial,
    )
    assert error(client.delete(f"/api/caterings/{cast.catering.company.id}")) == (
        403,
        company_denial,
    )
    # B's users: invisible (404) to reads; writes are 404 for an ADMIN, 403 (role) otherwise.
    assert error(client.get(f"/api/users/{other.employee.id}")) == (
        404,
        f"User #{other.employee.id} not found",
    )
    user_denial = (
        (404, f"User #{other.employee.id} not found")
        if role == "ADMIN"
        else (403, "This action requires the ADMIN role")
    )
    assert (
        error(patch(client, f"/api/users/{other.employee.id}", {"isActive": False})) == user_denial
    )
    assert error(client.delete(f"/api/users/{other.employee.id}")) == user_denial
    assert all(u["companyId"] == str(actor.company_id) for u in client.get("/api/users").json())
    # B's tokens: logging out with B's refresh token leaves it working.
    b_tokens = login(other.manager.email).json()
    assert (
        post(client, "/api/auth/logout", {"refreshToken": b_tokens["refreshToken"]}).status_code
        == 200
    )
    res = post(APIClient(), "/api/auth/refresh", {"refreshToken": b_tokens["refreshToken"]})
    assert res.status_code == 200
    b.refresh_from_db()
    other.employee.refresh_from_db()
    assert (b.name, b.status, b.deleted_at) == ("Startup Hub", "ACTIVE", None)
    assert other.employee.is_active
    assert Company.objects.get(pk=cast.catering.company.id).name == "Delicias del Sur"
    # The directory itself stays readable across tenants.
    assert client.get(f"/api/clients/{b.id}").status_code == 200
