"""Caterings and clients (reference §3.2-3.3, SPEC §2.1, §2.2, §2.4, §2.13) over HTTP."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from chefops.api.errors import BadRequest
from chefops.testing.factories import TEST_PASSWORD, CateringFactory, ClientFactory
from companies import services
from companies.models import AuthSession, Company, CompanyStatus, Role, User
from companies.tests.utils import ISO_MS, MISSING_ID, UUID_RE, error, login, patch, post
from outbox.models import OutboxEvent

pytestmark = pytest.mark.django_db

CATERING_KEYS = [
    "id",
    "companyType",
    "name",
    "email",
    "taxId",
    "status",
    "createdAt",
    "updatedAt",
    "dailyCapacity",
]
CLIENT_KEYS = [*CATERING_KEYS[:-1], "workMode", "officeDays"]
STRONG = "kitchen-rocket-91"


def catering_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Nuevo Catering",
        "email": "nuevo@example.com",
        "password": STRONG,
        "taxId": "30-00000001-1",
        "dailyCapacity": 120,
        **overrides,
    }


def client_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Nuevo Cliente",
        "email": "cliente@example.com",
        "password": STRONG,
        "taxId": "30-00000002-2",
        "workMode": "ONSITE",
        "officeDays": [5, 1, 3],
        **overrides,
    }


def assert_company_shape(body: dict[str, Any], keys: list[str]) -> None:
    assert list(body) == keys
    assert UUID_RE.match(body["id"])
    assert ISO_MS.match(body["createdAt"]) and ISO_MS.match(body["updatedAt"])
    assert body["status"] in ("ACTIVE", "INACTIVE")


# --- registration ----------------------------------------------------------------------------


def test_register_catering_creates_company_profile_and_admin(db: None) -> None:
    res = post(APIClient(), "/api/caterings", catering_body(email="Nuevo@Example.com"))
    assert res.status_code == 201
    body = res.json()
    assert_company_shape(body, CATERING_KEYS)
    assert body["companyType"] == "CATERING"
    assert body["email"] == "nuevo@example.com"
    assert (body["taxId"], body["dailyCapacity"], body["status"]) == (
        "30-00000001-1",
        120,
        "ACTIVE",
    )
    admin = User.objects.get(email="nuevo@example.com")
    assert (admin.role, str(admin.company_id)) == (Role.ADMIN, body["id"])
    assert admin.password.startswith("argon2$")
    event = OutboxEvent.objects.get()
    assert (event.event_type, event.aggregate_type, event.aggregate_id) == (
        "company.registered",
        "company",
        body["id"],
    )
    assert event.payload["adminUserId"] == str(admin.id)
    assert "password" not in str(event.payload).lower()
    res = login("nuevo@example.com", STRONG)
    assert res.status_code == 200
    assert res.json()["company"]["id"] == body["id"]


def test_register_client_keeps_office_day_order_and_blank_tax_id_is_null(db: None) -> None:
    res = post(APIClient(), "/api/clients", client_body(taxId=""))
    assert res.status_code == 201
    body = res.json()
    assert_company_shape(body, CLIENT_KEYS)
    assert (body["workMode"], body["officeDays"], body["taxId"]) == ("ONSITE", [5, 1, 3], None)
    assert Company.objects.get(pk=body["id"]).tax_id is None
    # A second blank tax id is not a duplicate (the original failed here with 500).
    res = post(APIClient(), "/api/clients", client_body(email="other@example.com", taxId=""))
    assert res.status_code == 201
    res = post(APIClient(), "/api/caterings", catering_body(email="c3@example.com", taxId=None))
    assert (res.status_code, res.json()["taxId"]) == (201, None)
    body = catering_body(email="c5@example.com")
    del body["taxId"]
    assert post(APIClient(), "/api/caterings", body).json()["taxId"] is None


def test_registration_ignores_a_stale_bearer_header(db: None) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer expired.or.garbage")
    assert post(client, "/api/caterings", catering_body()).status_code == 201


def test_registration_validation_messages(db: None) -> None:
    assert error(post(APIClient(), "/api/caterings", {})) == (
        400,
        [
            "name should not be empty",
            "name must be a string",
            "email must be an email",
            "password must be longer than or equal to 8 characters",
            "password must be a string",
            "dailyCapacity must not be less than 1",
            "dailyCapacity must be an integer number",
        ],
    )
    assert error(post(APIClient(), "/api/clients", {"extra": 1})) == (
        400,
        [
            "property extra should not exist",
            "name should not be empty",
            "name must be a string",
            "email must be an email",
            "password must be longer than or equal to 8 characters",
            "password must be a string",
            "workMode must be one of the following values: REMOTE, HYBRID, ONSITE",
            "each value in officeDays must not be greater than 7",
            "each value in officeDays must not be less than 1",
            "each value in officeDays must be an integer number",
            "officeDays must contain at least 1 elements",
            "officeDays must be an array",
        ],
    )
    cases: list[tuple[str, dict[str, Any], list[str]]] = [
        (
            "/api/clients",
            client_body(officeDays=[1, 1]),
            ["officeDays must not contain duplicate values"],
        ),
        (
            "/api/clients",
            client_body(officeDays=[]),
            ["officeDays must contain at least 1 elements"],
        ),
        (
            "/api/caterings",
            catering_body(dailyCapacity="30"),
            [
                "dailyCapacity must not be less than 1",
                "dailyCapacity must be an integer number",
            ],
        ),
        (
            "/api/caterings",
            catering_body(dailyCapacity=10**12),
            ["dailyCapacity must not be greater than 1000000"],
        ),
        (
            "/api/caterings",
            catering_body(name="x" * 256),
            ["name must be shorter than or equal to 255 characters"],
        ),
        (
            "/api/caterings",
            catering_body(taxId="1" * 65),
            ["taxId must be shorter than or equal to 64 characters"],
        ),
        (
            "/api/caterings",
            catering_body(password="short"),
            ["password must be longer than or equal to 8 characters"],
        ),
        ("/api/caterings", catering_body(password="password123"), ["password is too common"]),
        ("/api/caterings", catering_body(password="19283746501"), ["password is entirely numeric"]),
        ("/api/caterings", catering_body(status="ACTIVE"), ["property status should not exist"]),
    ]
    for path, body, messages in cases:
        assert error(post(APIClient(), path, body)) == (400, messages), body
    assert not Company.objects.exists()


def test_duplicate_email_or_tax_id_is_409(cast: Any) -> None:
    cases = [
        (catering_body(email="DELICIAS@example.com"), "A company with this email already exists"),
        (catering_body(email="techcorp@example.com"), "A company with this email already exists"),
        (
            catering_body(email="delicias.manager@example.com"),
            "A user with this email already exists",
        ),
        (
            catering_body(taxId=cast.client.company.tax_id),
            "A company with this tax id already exists",
        ),
    ]
    for body, message in cases:
        assert error(post(APIClient(), "/api/caterings", body)) == (409, message)
    assert error(post(APIClient(), "/api/clients", client_body(email="sabores@example.com"))) == (
        409,
        "A company with this email already exists",
    )


def test_a_lost_race_on_the_unique_constraint_is_409_not_500(
    cast: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The application check passes (the rival has not committed yet); the database's
    unique constraint catches it and the service answers 409."""
    real_check = services._raise_company_conflict
    calls = {"n": 0}

    def check_that_misses_the_first_time(**kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            real_check(**kwargs)

    monkeypatch.setattr(services, "_raise_company_conflict", check_that_misses_the_first_time)
    res = post(APIClient(), "/api/caterings", catering_body(email="delicias@example.com"))
    assert error(res) == (409, "A company with this email already exists")
    calls["n"] = 0
    res = post(APIClient(), "/api/clients", client_body(taxId=cast.catering.company.tax_id))
    assert error(res) == (409, "A company with this tax id already exists")
    assert Company.objects.count() == 4


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_with_the_same_email_give_one_201_and_one_409() -> None:
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def register(n: int) -> None:
        try:
            barrier.wait(timeout=60)
            res = post(APIClient(), "/api/caterings", catering_body(taxId=f"30-1-{n}"))
            statuses.append(res.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=register, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [201, 409]
    assert Company.objects.count() == 1


def test_registration_is_rate_limited_per_ip(db: None, settings: Any, frozen_clock: Any) -> None:
    settings.AUTH_THROTTLE_IP_RATE = "2/min"
    for n in range(2):
        body = catering_body(email=f"r{n}@example.com", taxId=None)
        assert post(APIClient(), "/api/caterings", body).status_code == 201
    res = post(APIClient(), "/api/caterings", catering_body(email="r3@example.com", taxId=None))
    assert error(res) == (429, "Too many requests, please try again later")
    assert 1 <= int(res["Retry-After"]) <= 60


# --- list and detail -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["ADMIN", "MANAGER", "EMPLOYEE"])
def test_every_role_reads_the_directory(cast: Any, role: str) -> None:
    client = cast.api(cast.client.user(role))
    cast.other_catering.company.status = CompanyStatus.INACTIVE
    cast.other_catering.company.save()
    res = client.get("/api/caterings")
    assert res.status_code == 200
    body = res.json()
    assert [c["email"] for c in body] == ["delicias@example.com", "sabores@example.com"]
    assert [c["status"] for c in body] == ["ACTIVE", "INACTIVE"]  # inactive ones stay listed
    for item in body:
        assert_company_shape(item, CATERING_KEYS)
    assert body[0]["dailyCapacity"] == 500
    assert res["X-Total-Count"] == "2"
    res = client.get("/api/clients")
    assert [c["email"] for c in res.json()] == ["techcorp@example.com", "startup@example.com"]
    for item in res.json():
        assert_company_shape(item, CLIENT_KEYS)
        assert item["officeDays"] == [1, 3, 5]
        assert item["workMode"] == "HYBRID"


def test_list_search_status_and_paging(cast: Any) -> None:
    client = cast.api(cast.catering.employee)
    for n in range(5):
        CateringFactory.create(
            name=f"Cocina {n}", status=CompanyStatus.INACTIVE if n % 2 else "ACTIVE"
        )
    res = client.get("/api/caterings?search=COCINA")
    assert [c["name"] for c in res.json()] == [f"Cocina {n}" for n in range(5)]
    res = client.get("/api/caterings?search=cocina&status=INACTIVE")
    assert [c["name"] for c in res.json()] == ["Cocina 1", "Cocina 3"]
    res = client.get("/api/caterings?limit=3&page=2")
    assert [c["name"] for c in res.json()] == ["Cocina 1", "Cocina 2", "Cocina 3"]
    assert res["X-Total-Count"] == "7"
    assert 'rel="next"' in res["Link"] and 'rel="prev"' in res["Link"]
    assert client.get("/api/caterings?search=zzz").json() == []
    assert error(client.get("/api/caterings?status=DELETED")) == (
        400,
        ["status must be one of the following values: ACTIVE, INACTIVE"],
    )
    assert error(client.get("/api/clients?limit=501"))[0] == 400
    assert client.get("/api/clients?unrelated=1").status_code == 200


def test_client_list_has_a_fixed_query_count(
    frozen_clock: Any, cast: Any, django_assert_num_queries: Any, settings: Any
) -> None:
    settings.AUTH_CACHE_SECONDS = 0  # the queries of the uncached path
    client = cast.api(cast.client.admin)
    client.get("/api/auth/session-status")  # activity of this minute recorded
    # auth (user+company), count, page rows with profile, office days (one prefetch)
    with django_assert_num_queries(4):
        assert len(client.get("/api/clients").json()) == 2
    for _ in range(8):
        ClientFactory.create(office_days=[2, 4])
    with django_assert_num_queries(4):
        assert len(client.get("/api/clients").json()) == 10
    with django_assert_num_queries(3):  # no office days for caterers
        client.get("/api/caterings")


def test_detail_and_its_404s(cast: Any) -> None:
    client = cast.api(cast.other_client.employee)
    catering_id, client_id = cast.catering.company.id, cast.client.company.id
    res = client.get(f"/api/caterings/{catering_id}")
    assert res.status_code == 200
    assert_company_shape(res.json(), CATERING_KEYS)
    assert res.json()["id"] == str(catering_id)
    res = client.get(f"/api/clients/{client_id}")
    assert (res.status_code, res.json()["officeDays"]) == (200, [1, 3, 5])
    assert error(client.get(f"/api/caterings/{client_id}")) == (
        404,
        f"Catering company #{client_id} not found",
    )
    assert error(client.get(f"/api/clients/{catering_id}")) == (
        404,
        f"Client company #{catering_id} not found",
    )
    assert error(client.get(f"/api/clients/{MISSING_ID}")) == (
        404,
        f"Client company #{MISSING_ID} not found",
    )
    assert error(client.get("/api/caterings/not-a-uuid")) == (
        400,
        "Validation failed (uuid is expected)",
    )
    res = APIClient().get(f"/api/caterings/{catering_id}")
    assert (res.status_code, res.json()) == (401, {"message": "Unauthorized", "statusCode": 401})


# --- PATCH -----------------------------------------------------------------------------------


def test_admin_updates_own_catering_and_updated_at_follows_real_changes(cast: Any) -> None:
    company = cast.catering.company
    client = cast.api(cast.catering.admin)
    url = f"/api/caterings/{company.id}"
    before = client.get(url).json()
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        res = patch(client, url, {})
        assert (res.status_code, res.json()["updatedAt"]) == (200, before["updatedAt"])
        res = patch(client, url, {"dailyCapacity": 750})
        body = res.json()
        assert (res.status_code, body["dailyCapacity"]) == (200, 750)
        assert body["updatedAt"] > before["updatedAt"]  # profile fields count as changes
        assert_company_shape(body, CATERING_KEYS)
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        res = patch(client, url, {"name": "Delicias SA", "taxId": ""})
        assert (res.json()["name"], res.json()["taxId"]) == ("Delicias SA", None)
        assert res.json()["updatedAt"] > body["updatedAt"]
        same = patch(client, url, {"name": "Delicias SA", "dailyCapacity": 750})
        assert same.json()["updatedAt"] == res.json()["updatedAt"]
    res = patch(client, url, {"taxId": None})
    assert res.json()["taxId"] is None


def test_admin_updates_own_client_profile_and_office_days(cast: Any) -> None:
    client = cast.api(cast.client.admin)
    url = f"/api/clients/{cast.client.company.id}"
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        res = patch(client, url, {"workMode": "REMOTE", "officeDays": [7, 2]})
    body = res.json()
    assert (res.status_code, body["workMode"], body["officeDays"]) == (200, "REMOTE", [7, 2])
    assert body["updatedAt"] > body["createdAt"]
    res = patch(client, url, {"officeDays": []})
    assert (res.status_code, res.json()["officeDays"]) == (200, [])
    assert error(patch(client, url, {"officeDays": [1, 1]})) == (
        400,
        ["officeDays must not contain duplicate values"],
    )
    assert error(patch(client, url, {"email": "x@y.com", "password": "12345678"})) == (
        400,
        ["property email should not exist", "property password should not exist"],
    )
    assert error(patch(client, url, {"name": "", "status": "DELETED", "workMode": "X"})) == (
        400,
        [
            "name should not be empty",
            "workMode must be one of the following values: REMOTE, HYBRID, ONSITE",
            "status must be one of the following values: ACTIVE, INACTIVE",
        ],
    )
    assert error(patch(client, url, {"name": None})) == (
        400,
        ["name should not be empty", "name must be a string"],
    )
    assert error(patch(client, url, {"taxId": cast.other_client.company.tax_id})) == (
        409,
        "A company with this tax id already exists",
    )


def test_patch_is_for_the_companys_own_admin_only(cast: Any) -> None:
    target = cast.client.company
    url = f"/api/clients/{target.id}"
    for user in (cast.other_client.admin, cast.catering.admin):
        assert error(patch(cast.api(user), url, {"name": "Hijacked"})) == (
            403,
            "You can only modify your own company",
        )
    for user in (cast.client.manager, cast.client.employee, cast.other_client.employee):
        assert error(patch(cast.api(user), url, {"name": "Hijacked"})) == (
            403,
            "This action requires the ADMIN role",
        )
    target.refresh_from_db()
    assert target.name == "TechCorp Argentina"
    assert error(patch(cast.api(cast.client.admin), f"/api/caterings/{target.id}", {})) == (
        404,
        f"Catering company #{target.id} not found",
    )
    assert error(patch(cast.api(cast.client.admin), "/api/clients/123", {})) == (
        400,
        "Validation failed (uuid is expected)",
    )


def test_deactivation_by_patch_stops_logins_and_tokens(cast: Any) -> None:
    tokens = login("sabores.employee@example.com").json()
    client = cast.api(cast.other_catering.admin)
    res = patch(client, f"/api/caterings/{cast.other_catering.company.id}", {"status": "INACTIVE"})
    assert (res.status_code, res.json()["status"]) == (200, "INACTIVE")
    assert error(login("sabores@example.com")) == (401, "Company account is inactive")
    assert client.get("/api/users").status_code == 401
    res = post(APIClient(), "/api/auth/refresh", {"refreshToken": tokens["refreshToken"]})
    assert error(res) == (401, "Company account is no longer active")
    # Staff reactivate it (the same service as the API); sessions come back with it.
    staff = User.objects.create_superuser("ops@example.com", "ops-password-1")
    services.company_update(
        actor=staff,
        company_id=cast.other_catering.company.id,
        company_type="CATERING",
        data={"status": "ACTIVE"},
    )
    assert login("sabores@example.com").status_code == 200
    res = post(APIClient(), "/api/auth/refresh", {"refreshToken": tokens["refreshToken"]})
    assert res.status_code == 200


# --- DELETE (soft) ---------------------------------------------------------------------------


def test_admin_soft_deletes_own_company(cast: Any) -> None:
    company = cast.client.company
    tokens = login("techcorp.manager@example.com").json()
    client = cast.api(cast.client.admin)
    res = client.delete(f"/api/clients/{company.id}")
    assert res.status_code == 200
    body = res.json()
    assert_company_shape(body, CLIENT_KEYS)
    assert (body["id"], body["status"]) == (str(company.id), "INACTIVE")
    company.refresh_from_db()
    assert company.deleted_at is not None
    assert not AuthSession.objects.filter(user__company=company).exists()
    assert client.get("/api/users").status_code == 401
    assert error(login("techcorp@example.com")) == (401, "Company account is inactive")
    res = post(APIClient(), "/api/auth/refresh", {"refreshToken": tokens["refreshToken"]})
    assert res.status_code == 401
    # Still in the directory, as INACTIVE (the original keeps deactivated companies listed).
    listed = cast.api(cast.other_client.employee).get("/api/clients").json()
    assert [c["status"] for c in listed if c["id"] == str(company.id)] == ["INACTIVE"]


def test_delete_is_for_the_companys_own_admin_only(cast: Any) -> None:
    url = f"/api/caterings/{cast.catering.company.id}"
    assert error(cast.api(cast.other_catering.admin).delete(url)) == (
        403,
        "You can only modify your own company",
    )
    for user in (cast.catering.manager, cast.catering.employee):
        assert error(cast.api(user).delete(url)) == (403, "This action requires the ADMIN role")
    assert error(cast.api(cast.catering.admin).delete(f"/api/caterings/{MISSING_ID}")) == (
        404,
        f"Catering company #{MISSING_ID} not found",
    )
    assert error(
        cast.api(cast.catering.admin).delete(f"/api/clients/{cast.catering.company.id}")
    ) == (
        404,
        f"Client company #{cast.catering.company.id} not found",
    )
    cast.catering.company.refresh_from_db()
    assert cast.catering.company.deleted_at is None


def test_undelete_within_thirty_days_only(cast: Any) -> None:
    staff = User.objects.create_superuser("ops@example.com", "ops-password-1")
    company = cast.catering.company
    start = timezone.now()
    cast.api(cast.catering.admin).delete(f"/api/caterings/{company.id}")
    with time_machine.travel(start + timedelta(days=29)):
        services.company_undelete(actor=staff, company_id=company.id)
    company.refresh_from_db()
    assert (company.status, company.deleted_at) == (CompanyStatus.ACTIVE, None)
    assert login("delicias@example.com").status_code == 200
    services.company_soft_delete(actor=staff, company_id=company.id, company_type="CATERING")
    with (
        time_machine.travel(timezone.now() + timedelta(days=31)),
        pytest.raises(BadRequest, match="more than 30 days"),
    ):
        services.company_undelete(actor=staff, company_id=company.id)
    company.refresh_from_db()
    assert company.status == CompanyStatus.INACTIVE
    assert company.deleted_at is not None


def test_login_password_is_the_registration_password(db: None) -> None:
    post(APIClient(), "/api/clients", client_body())
    assert error(login("cliente@example.com", TEST_PASSWORD)) == (401, "Invalid credentials")
    assert login("cliente@example.com", STRONG).status_code == 200
