"""Django admin: pages render, actions go through the services, users are created safely."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from companies.models import AuthSession, Company, CompanyStatus, Role, User
from companies.tests.utils import login

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
