"""Users of a company (reference §3.4, SPEC §2.1): scoped to the caller's company."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from chefops.testing.factories import UserFactory
from companies.models import AuthSession, OneTimeToken, OneTimeTokenPurpose, Role, User
from companies.tests.utils import ISO_MS, MISSING_ID, UUID_RE, error, login, patch, post
from outbox.models import OutboxEvent

pytestmark = pytest.mark.django_db

USER_KEYS = ["id", "companyId", "email", "name", "role", "isActive", "createdAt", "updatedAt"]


def assert_user_shape(body: dict[str, Any]) -> None:
    assert list(body) == USER_KEYS
    assert UUID_RE.match(body["id"]) and UUID_RE.match(body["companyId"])
    assert ISO_MS.match(body["createdAt"]) and ISO_MS.match(body["updatedAt"])
    assert body["role"] in ("ADMIN", "MANAGER", "EMPLOYEE")
    assert isinstance(body["isActive"], bool)


@pytest.mark.parametrize("role", ["ADMIN", "MANAGER", "EMPLOYEE"])
def test_list_and_detail_show_only_the_callers_company(cast: Any, role: str) -> None:
    client = cast.api(cast.catering.user(role))
    res = client.get("/api/users")
    assert res.status_code == 200
    body = res.json()
    assert [u["email"] for u in body] == [
        "delicias@example.com",
        "delicias.manager@example.com",
        "delicias.employee@example.com",
    ]
    assert res["X-Total-Count"] == "3"
    for item in body:
        assert_user_shape(item)
        assert item["companyId"] == str(cast.catering.company.id)
    res = client.get(f"/api/users/{cast.catering.manager.id}")
    assert res.status_code == 200
    assert res.json()["email"] == "delicias.manager@example.com"
    for outsider in (cast.other_catering.admin, cast.client.employee):
        assert error(client.get(f"/api/users/{outsider.id}")) == (
            404,
            f"User #{outsider.id} not found",
        )
    assert error(client.get(f"/api/users/{MISSING_ID}")) == (404, f"User #{MISSING_ID} not found")
    assert error(client.get("/api/users/nope")) == (400, "Validation failed (uuid is expected)")


def test_admin_invites_a_user(cast: Any) -> None:
    client = cast.api(cast.client.admin)
    res = post(
        client, "/api/users", {"email": "Ana@TechCorp.com", "name": "Ana", "role": "MANAGER"}
    )
    assert res.status_code == 201
    body = res.json()
    assert_user_shape(body)
    assert (body["email"], body["name"], body["role"], body["isActive"]) == (
        "ana@techcorp.com",
        "Ana",
        "MANAGER",
        True,
    )
    assert body["companyId"] == str(cast.client.company.id)
    user = User.objects.get(pk=body["id"])
    assert not user.has_usable_password()
    token = OneTimeToken.objects.get(user=user)
    assert token.purpose == OneTimeTokenPurpose.INVITATION
    assert token.expires_at - token.created_at == timedelta(hours=72)
    event = OutboxEvent.objects.get()
    assert (event.event_type, event.aggregate_id) == ("user.invited", str(user.id))
    assert event.payload["tokenId"] == str(token.id)
    assert event.metadata["actorUserId"] == str(cast.client.admin.id)
    # An empty name is accepted, as in the original.
    res = post(
        client, "/api/users", {"email": "noname@example.com", "name": "", "role": "EMPLOYEE"}
    )
    assert (res.status_code, res.json()["name"]) == (201, "")


def test_invite_validation_and_conflicts(cast: Any) -> None:
    client = cast.api(cast.client.admin)
    assert error(post(client, "/api/users", {})) == (
        400,
        [
            "email must be an email",
            "name must be a string",
            "role must be one of the following values: ADMIN, MANAGER, EMPLOYEE",
        ],
    )
    body = {"email": "x@example.com", "name": "X", "role": "EMPLOYEE", "isActive": False}
    assert error(post(client, "/api/users", body)) == (400, ["property isActive should not exist"])
    for email in ("TECHCORP.manager@example.com", "sabores.employee@example.com"):
        res = post(client, "/api/users", {"email": email, "name": "Dup", "role": "EMPLOYEE"})
        assert error(res) == (409, "A user with this email already exists")
    assert not OutboxEvent.objects.exists()


def test_admin_updates_a_user(cast: Any) -> None:
    client = cast.api(cast.catering.admin)
    target = cast.catering.employee
    tokens = login(target.email).json()
    url = f"/api/users/{target.id}"
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        res = patch(client, url, {"name": "Renamed", "role": "MANAGER", "email": "R@Example.com"})
    body = res.json()
    assert res.status_code == 200
    assert_user_shape(body)
    assert (body["name"], body["role"], body["email"]) == ("Renamed", "MANAGER", "r@example.com")
    assert body["updatedAt"] > body["createdAt"]
    res = patch(client, url, {"isActive": False})
    assert (res.status_code, res.json()["isActive"]) == (200, False)
    # A deactivated user loses every session at once.
    assert not AuthSession.objects.filter(user=target).exists()
    res = post(cast.api(), "/api/auth/refresh", {"refreshToken": tokens["refreshToken"]})
    assert res.status_code == 401
    assert error(patch(client, url, {"email": "delicias.manager@example.com"})) == (
        409,
        "A user with this email already exists",
    )
    assert error(patch(client, url, {"isActive": "false", "role": "BOSS", "extra": 1})) == (
        400,
        [
            "property extra should not exist",
            "role must be one of the following values: ADMIN, MANAGER, EMPLOYEE",
            "isActive must be a boolean value",
        ],
    )
    outsider = cast.client.employee
    assert error(patch(client, f"/api/users/{outsider.id}", {"name": "x"})) == (
        404,
        f"User #{outsider.id} not found",
    )
    outsider.refresh_from_db()
    assert outsider.name != "x"


def test_the_last_active_admin_stays(cast: Any) -> None:
    admin = cast.client.admin
    client = cast.api(admin)
    url = f"/api/users/{admin.id}"
    for change in ({"role": "MANAGER"}, {"isActive": False}):
        assert error(patch(client, url, change)) == (
            400,
            "Cannot demote or deactivate the last active ADMIN of the company",
        )
    assert error(client.delete(url)) == (400, "Cannot delete the last active ADMIN of the company")
    # An inactive second admin does not count; an active one does.
    second = UserFactory.create(company=cast.client.company, role=Role.ADMIN, is_active=False)
    assert patch(client, url, {"role": "MANAGER"}).status_code == 400
    assert patch(client, f"/api/users/{second.id}", {"isActive": True}).status_code == 200
    res = patch(client, url, {"role": "EMPLOYEE"})  # demoting oneself is fine now
    assert (res.status_code, res.json()["role"]) == (200, "EMPLOYEE")
    # The demoted caller has lost the ADMIN rights at once.
    assert error(patch(client, url, {"role": "ADMIN"})) == (
        403,
        "This action requires the ADMIN role",
    )
    client = cast.api(second)
    assert client.delete(f"/api/users/{admin.id}").status_code == 200
    assert error(client.delete(f"/api/users/{second.id}")) == (
        400,
        "Cannot delete the last active ADMIN of the company",
    )


def test_admin_deletes_a_user(cast: Any) -> None:
    client = cast.api(cast.other_client.admin)
    target = cast.other_client.manager
    login(target.email)
    res = client.delete(f"/api/users/{target.id}")
    assert (res.status_code, res.json()) == (200, {"message": "User deleted successfully"})
    assert not User.objects.filter(pk=target.id).exists()
    assert not AuthSession.objects.filter(user_id=target.id).exists()
    assert error(client.delete(f"/api/users/{target.id}")) == (404, f"User #{target.id} not found")
    outsider = cast.client.manager
    assert error(client.delete(f"/api/users/{outsider.id}")) == (
        404,
        f"User #{outsider.id} not found",
    )
    assert User.objects.filter(pk=outsider.id).exists()
    assert error(client.delete("/api/users/1")) == (400, "Validation failed (uuid is expected)")


@pytest.mark.parametrize("role", ["MANAGER", "EMPLOYEE"])
def test_only_admins_change_users(cast: Any, role: str) -> None:
    client = cast.api(cast.client.user(role))
    target = cast.client.employee
    body = {"email": "new@example.com", "name": "New", "role": "EMPLOYEE"}
    expected = (403, "This action requires the ADMIN role")
    assert error(post(client, "/api/users", body)) == expected
    assert error(patch(client, f"/api/users/{target.id}", {"name": "x"})) == expected
    assert error(client.delete(f"/api/users/{target.id}")) == expected
    assert User.objects.filter(pk=target.id, name=target.name).exists()
