"""Django admin: pages render, actions go through the services, users are created safely."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client

from chefops.testing.factories import ContractFactory
from companies.models import (
    AuthSession,
    Company,
    CompanyStatus,
    CompanyType,
    OneTimeToken,
    Role,
    User,
)
from companies.tests.utils import bearer, login
from outbox.models import OutboxEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(db: None) -> Client:
    staff = User.objects.create_superuser("ops@example.com", "ops-password-1")
    client = Client()
    client.force_login(staff)
    return client


def test_admin_pages_render(cast: Any, staff_client: Client) -> None:
    login("delicias@example.com")
    for url in (
        "/admin/companies/company/",
        "/admin/companies/company/?company_type__exact=CLIENT&status__exact=ACTIVE&q=tech",
        f"/admin/companies/company/{cast.client.company.id}/change/",
        f"/admin/companies/company/{cast.catering.company.id}/change/",
        "/admin/companies/company/add/",
        "/admin/companies/user/",
        "/admin/companies/user/?q=delicias",
        f"/admin/companies/user/{cast.catering.admin.id}/change/",
        "/admin/companies/user/add/",
        "/admin/companies/authsession/",
        "/admin/companies/refreshtoken/",
        "/admin/companies/onetimetoken/",
    ):
        assert staff_client.get(url).status_code == 200, url
    assert staff_client.get("/admin/companies/refreshtoken/add/").status_code == 403


def test_deactivate_and_undelete_actions_use_the_services(cast: Any, staff_client: Client) -> None:
    company = cast.client.company
    res = staff_client.post(
        "/admin/companies/company/",
        {"action": "deactivate", "_selected_action": [str(company.id)]},
    )
    assert res.status_code == 302
    company.refresh_from_db()
    assert company.status == CompanyStatus.INACTIVE
    assert login("techcorp@example.com").status_code == 401
    company.deleted_at = company.updated_at
    company.save()
    res = staff_client.post(
        "/admin/companies/company/",
        {"action": "undelete", "_selected_action": [str(company.id)]},
    )
    assert res.status_code == 302
    company.refresh_from_db()
    assert (company.status, company.deleted_at) == (CompanyStatus.ACTIVE, None)
    assert login("techcorp@example.com").status_code == 200


def test_staff_create_company_users_and_platform_staff(cast: Any, staff_client: Client) -> None:
    common = {"password1": "", "password2": "", "usable_password": "false"}
    res = staff_client.post(
        "/admin/companies/user/add/",
        {
            "email": "Cook@Example.com",
            "name": "Cook",
            "company": str(cast.catering.company.id),
            "role": Role.EMPLOYEE,
            **common,
        },
    )
    assert res.status_code == 302, res.content.decode()[:2000]
    user = User.objects.get(email="cook@example.com")
    assert (user.company_id, user.role, user.has_usable_password()) == (
        cast.catering.company.id,
        Role.EMPLOYEE,
        False,
    )
    # an invitation, as POST /api/users: the e-mail's link sets the password
    event = OutboxEvent.objects.get()
    assert event.event_type == "user.invited"
    assert event.payload["companyId"] == str(cast.catering.company.id)
    assert event.payload["invitedByUserId"] == event.metadata["actorUserId"]
    assert OneTimeToken.objects.get(pk=event.payload["tokenId"]).user == user
    res = staff_client.post(
        "/admin/companies/user/add/",
        {
            "email": "chef@example.com",
            "name": "Chef",
            "company": str(cast.catering.company.id),
            "role": Role.MANAGER,
            "usable_password": "true",
            "password1": "staff-secret-91",
            "password2": "staff-secret-91",
        },
    )
    assert res.status_code == 200
    assert b"invitation e-mail lets them set their own password" in res.content
    assert not User.objects.filter(email="chef@example.com").exists()
    res = staff_client.post(
        "/admin/companies/user/add/",
        {"email": "nobody@example.com", "name": "Nobody", "role": Role.EMPLOYEE, **common},
    )
    assert res.status_code == 200
    assert b"needs a company" in res.content
    res = staff_client.post(
        "/admin/companies/user/add/",
        {
            "email": "COOK@example.com",
            "name": "Dup",
            "company": str(cast.catering.company.id),
            "role": Role.EMPLOYEE,
            **common,
        },
    )
    assert res.status_code == 200
    assert b"already exists" in res.content
    res = staff_client.post(
        "/admin/companies/user/add/",
        {
            "email": "ops2@example.com",
            "name": "Ops",
            "role": Role.EMPLOYEE,
            "is_staff": "on",
            "password1": "staff-secret-91",
            "password2": "staff-secret-91",
            "usable_password": "true",
        },
    )
    assert res.status_code == 302
    assert User.objects.get(email="ops2@example.com").is_staff
    assert OutboxEvent.objects.count() == 1  # platform staff are not invited


def test_deleting_a_session_in_the_admin_revokes_it(cast: Any, staff_client: Client) -> None:
    tokens = login("delicias@example.com").json()
    session = AuthSession.objects.get()
    res = staff_client.post(f"/admin/companies/authsession/{session.id}/delete/", {"post": "yes"})
    assert res.status_code == 302
    from rest_framework.test import APIClient

    from companies.tests.utils import post

    assert (
        post(APIClient(), "/api/auth/refresh", {"refreshToken": tokens["refreshToken"]}).status_code
        == 401
    )
    assert Company.objects.count() == 4


# --- every change through the services ---------------------------------------------------------

NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def company_url(company: Company, page: str = "change") -> str:
    return f"/admin/companies/company/{company.id}/{page}/"


def user_url(user: User, page: str = "change") -> str:
    return f"/admin/companies/user/{user.id}/{page}/"


def company_form(company: Company, **overrides: Any) -> dict[str, Any]:
    company.refresh_from_db()
    data: dict[str, Any] = {
        "name": company.name,
        "email": company.email,
        "tax_id": company.tax_id or "",
        "status": company.status,
        # the read-only users inline: its management form, no rows posted
        "users-TOTAL_FORMS": "0",
        "users-INITIAL_FORMS": "0",
    }
    if company.company_type == CompanyType.CATERING:
        data["daily_capacity"] = str(company.catering_profile.daily_capacity)
    else:
        data["work_mode"] = company.client_profile.work_mode
        data["office_days"] = [
            str(d) for d in company.office_days.values_list("day_of_week", flat=True)
        ]
    data.update(overrides)
    return data


def user_form(user: User, **overrides: Any) -> dict[str, Any]:
    user.refresh_from_db()
    data: dict[str, Any] = {"email": user.email, "name": user.name, "role": user.role}
    for flag in ("is_active", "is_staff", "is_superuser"):
        if getattr(user, flag):
            data[flag] = "on"
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def form_errors(response: Any) -> list[str]:
    form = response.context["adminform"].form
    return [str(e) for errors in form.errors.values() for e in errors]


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_change_form_is_company_update(
    cast: Any, staff_client: Client, clock: time_machine.Traveller
) -> None:
    company = cast.catering.company
    before = Company.objects.get(pk=company.pk).updated_at
    clock.shift(timedelta(minutes=5))
    res = staff_client.post(
        company_url(company),
        company_form(
            company, name="Delicias SA", email="Hola@Delicias.example", daily_capacity="650"
        ),
    )
    assert res.status_code == 302, form_errors(res)
    company.refresh_from_db()
    assert (company.name, company.email) == ("Delicias SA", "hola@delicias.example")
    assert company.catering_profile.daily_capacity == 650
    assert company.updated_at == NOW + timedelta(minutes=5) != before
    # the admin ADMIN user's login is its own: the contact address does not move it
    assert login("delicias@example.com").status_code == 200
    assert not OutboxEvent.objects.exists()  # as PATCH /api/caterings/:id

    client = cast.client.company
    res = staff_client.post(
        company_url(client), company_form(client, work_mode="REMOTE", office_days=["2", "4"])
    )
    assert res.status_code == 302, form_errors(res)
    client.refresh_from_db()
    assert client.client_profile.work_mode == "REMOTE"
    assert list(client.office_days.values_list("day_of_week", flat=True)) == [2, 4]


def test_status_active_undeletes_within_30_days_and_is_refused_after(
    cast: Any, staff_client: Client, clock: time_machine.Traveller
) -> None:
    recent, old = cast.client.company, cast.other_client.company
    Company.objects.filter(pk=recent.pk).update(
        status=CompanyStatus.INACTIVE, deleted_at=NOW - timedelta(days=29)
    )
    Company.objects.filter(pk=old.pk).update(
        status=CompanyStatus.INACTIVE, deleted_at=NOW - timedelta(days=31)
    )
    res = staff_client.post(company_url(recent), company_form(recent, status="ACTIVE"))
    assert res.status_code == 302, form_errors(res)
    recent.refresh_from_db()
    assert (recent.status, recent.deleted_at) == (CompanyStatus.ACTIVE, None)
    assert login("techcorp@example.com").status_code == 200

    res = staff_client.post(company_url(old), company_form(old, status="ACTIVE", name="Renamed"))
    assert res.status_code == 200
    assert form_errors(res) == ["A company deleted more than 30 days ago cannot be restored"]
    old.refresh_from_db()
    assert (old.status, old.name) == (CompanyStatus.INACTIVE, "Startup Hub")
    assert old.deleted_at == NOW - timedelta(days=31)


def test_soft_delete_is_an_action_and_hard_delete_is_gone(cast: Any, staff_client: Client) -> None:
    company = cast.client.company
    assert login("techcorp@example.com").status_code == 200
    assert AuthSession.objects.filter(user__company=company).exists()
    assert staff_client.get(company_url(company, "delete")).status_code == 403
    changelist = staff_client.get("/admin/companies/company/")
    actions = [
        value for value, _label in changelist.context["action_form"].fields["action"].choices
    ]
    assert "delete_selected" not in actions
    res = staff_client.post(
        "/admin/companies/company/",
        {"action": "soft_delete", "_selected_action": [str(company.id)]},
        follow=True,
    )
    assert messages_of(res) == ["1 company(ies) updated."]
    company.refresh_from_db()
    assert company.status == CompanyStatus.INACTIVE and company.deleted_at is not None
    assert not AuthSession.objects.filter(user__company=company).exists()
    assert login("techcorp@example.com").status_code == 401


def register_form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "company_type": "CLIENT",
        "name": "Nueva Oficina",
        "email": "Nueva@Example.com",
        "tax_id": "",
        "password1": "a-fresh-passphrase-7",
        "password2": "a-fresh-passphrase-7",
        "daily_capacity": "",
        "work_mode": "ONSITE",
        "office_days": ["1", "2"],
    }
    data.update(overrides)
    return data


def test_adding_a_company_is_a_registration(cast: Any, staff_client: Client) -> None:
    res = staff_client.post("/admin/companies/company/add/", register_form())
    assert res.status_code == 302, form_errors(res)
    company = Company.objects.get(email="nueva@example.com")
    assert company.client_profile.work_mode == "ONSITE"
    assert list(company.office_days.values_list("day_of_week", flat=True)) == [1, 2]
    admin_user = User.objects.get(company=company)
    assert (admin_user.email, admin_user.role) == ("nueva@example.com", Role.ADMIN)
    assert login("nueva@example.com", "a-fresh-passphrase-7").status_code == 200
    event = OutboxEvent.objects.get()
    assert event.event_type == "company.registered"
    assert event.payload["adminUserId"] == str(admin_user.id)

    res = staff_client.post(
        "/admin/companies/company/add/",
        register_form(company_type="CATERING", email="other@example.com"),
    )
    assert res.status_code == 200
    assert form_errors(res) == ["A catering company needs a daily capacity."]
    res = staff_client.post(
        "/admin/companies/company/add/",
        register_form(email="techcorp.manager@example.com", password1="x", password2="x"),
    )
    assert res.status_code == 200
    assert form_errors(res) == [
        "password is too short. It must contain at least 8 characters",
        "password is too common",
    ]
    res = staff_client.post(
        "/admin/companies/company/add/", register_form(email="techcorp.manager@example.com")
    )
    assert res.status_code == 200
    assert form_errors(res) == ["A user with this email already exists"]
    assert Company.objects.count() == 5
    assert OutboxEvent.objects.count() == 1


def test_demoting_or_deactivating_the_last_admin_is_refused(
    cast: Any, staff_client: Client
) -> None:
    admin = cast.catering.admin
    for change in ({"role": "EMPLOYEE"}, {"is_active": None}):
        res = staff_client.post(user_url(admin), user_form(admin, name="Changed", **change))
        assert res.status_code == 200
        assert form_errors(res) == [
            "Cannot demote or deactivate the last active ADMIN of the company"
        ]
        admin.refresh_from_db()
        assert (admin.role, admin.is_active, admin.name) == (
            Role.ADMIN,
            True,
            cast.catering.admin.name,
        )


def test_a_user_deactivated_in_the_admin_loses_its_sessions(
    cast: Any, staff_client: Client
) -> None:
    manager = cast.catering.manager
    tokens = login(manager.email).json()
    res = staff_client.post(
        user_url(manager),
        user_form(manager, is_active=None, role="EMPLOYEE", company=str(cast.client.company.id)),
    )
    assert res.status_code == 302, form_errors(res)
    manager.refresh_from_db()
    assert (manager.is_active, manager.role) == (False, Role.EMPLOYEE)
    assert manager.company_id == cast.catering.company.id  # read-only: ignored
    assert not AuthSession.objects.filter(user=manager).exists()
    assert bearer(tokens["accessToken"]).get("/api/auth/session-status").status_code == 401


def test_staff_only_fields_are_written_by_the_admin_itself(cast: Any, staff_client: Client) -> None:
    employee = cast.catering.employee
    res = staff_client.post(user_url(employee), user_form(employee, is_staff="on", name="Eve"))
    assert res.status_code == 302, form_errors(res)
    employee.refresh_from_db()
    assert (employee.is_staff, employee.name, employee.role) == (True, "Eve", Role.EMPLOYEE)


def test_deleting_users_goes_through_user_delete(cast: Any, staff_client: Client) -> None:
    admin, manager, employee = cast.catering.admin, cast.catering.manager, cast.catering.employee
    res = staff_client.post(user_url(admin, "delete"), {"post": "yes"}, follow=True)
    assert messages_of(res) == ["Cannot delete the last active ADMIN of the company"]
    assert res.redirect_chain == [(user_url(admin), 302)]
    res = staff_client.post(
        "/admin/companies/user/",
        {
            "action": "delete_selected",
            "post": "yes",
            "_selected_action": [str(manager.id), str(admin.id)],
        },
        follow=True,
    )
    assert messages_of(res) == [
        "Nothing deleted: Cannot delete the last active ADMIN of the company"
    ]
    assert User.objects.filter(pk__in=[admin.pk, manager.pk]).count() == 2
    res = staff_client.post(
        "/admin/companies/user/",
        {
            "action": "delete_selected",
            "post": "yes",
            "_selected_action": [str(manager.id), str(employee.id)],
        },
        follow=True,
    )
    assert messages_of(res) == ["Successfully deleted 2 users."]
    assert list(User.objects.filter(company=cast.catering.company)) == [admin]


def test_a_password_set_by_staff_ends_every_session(cast: Any, staff_client: Client) -> None:
    manager = cast.catering.manager
    tokens = login(manager.email).json()
    url = user_url(manager, "password")
    res = staff_client.post(
        url, {"password1": "short", "password2": "short", "usable_password": "true"}
    )
    assert res.status_code == 200
    assert AuthSession.objects.filter(user=manager).exists()
    new = "another-passphrase-19"
    res = staff_client.post(url, {"password1": new, "password2": new, "usable_password": "true"})
    assert res.status_code == 302
    assert not AuthSession.objects.filter(user=manager).exists()
    assert bearer(tokens["accessToken"]).get("/api/auth/session-status").status_code == 401
    assert login(manager.email).status_code == 401
    assert login(manager.email, new).status_code == 200
    # staff changing their own: the admin session follows the new hash
    staff = User.objects.get(email="ops@example.com")
    res = staff_client.post(
        user_url(staff, "password"), {"password1": new, "password2": new, "usable_password": "true"}
    )
    assert res.status_code == 302
    assert staff_client.get("/admin/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_caches_show_admin_changes_at_once(
    cast: Any, settings: Any, staff_client: Client
) -> None:
    settings.READ_CACHE_SECONDS = 300
    settings.AUTH_CACHE_SECONDS = 300
    ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company
    )
    api = bearer(login("techcorp.employee@example.com").json()["accessToken"])

    def caterer_name() -> str:
        res = api.get("/api/contracts")
        assert res.status_code == 200
        return str(res.json()[0]["cateringName"])

    assert caterer_name() == caterer_name() == "Delicias del Sur"  # the second from the cache
    caterer = cast.catering.company
    res = staff_client.post(company_url(caterer), company_form(caterer, name="Delicias SA"))
    assert res.status_code == 302, form_errors(res)
    assert caterer_name() == "Delicias SA"
    client = cast.client.company
    res = staff_client.post(company_url(client), company_form(client, status="INACTIVE"))
    assert res.status_code == 302, form_errors(res)
    assert api.get("/api/contracts").status_code == 401


def test_the_user_services_take_staff_as_a_company_admin_of_any_company(cast: Any) -> None:
    from chefops.api.errors import BadRequest, Forbidden, NotFound
    from companies import services

    staff = User.objects.create_superuser("ops2@example.com", "ops-password-1")
    manager = services.user_update(
        actor=staff, user_id=cast.client.manager.pk, data={"name": "Renamed"}
    )
    assert (manager.name, manager.company_id) == ("Renamed", cast.client.company.id)
    with pytest.raises(NotFound):  # a platform staff account is no company's user
        services.user_update(actor=staff, user_id=staff.pk, data={"name": "x"})
    with pytest.raises(BadRequest, match="needs a company"):
        services.user_invite(actor=staff, email="x@example.com", name="X", role=Role.EMPLOYEE)
    with pytest.raises(NotFound):
        services.user_invite(
            actor=staff,
            email="x@example.com",
            name="X",
            role=Role.EMPLOYEE,
            company_id=cast.client.manager.pk,  # not a company id
        )
    # a company ADMIN invites into its own company, whatever it names
    invited = services.user_invite(
        actor=cast.client.admin,
        email="y@example.com",
        name="Y",
        role=Role.EMPLOYEE,
        company_id=cast.catering.company.id,
    )
    assert invited.company_id == cast.client.company.id
    with pytest.raises(Forbidden, match="reserved to platform staff"):
        services.user_password_set(
            actor=cast.client.admin, user_id=cast.client.employee.pk, password="x-long-pass-22"
        )
