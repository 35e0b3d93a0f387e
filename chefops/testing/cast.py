"""The tenant cast shared by API tests: two caterers, two clients, a user of each role each.

cast.catering.admin / .manager / .employee   (company cast.catering.company)
cast.other_catering..., cast.client..., cast.other_client...
cast.api(user) -> APIClient authenticated with a real Bearer access token (of a new session)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from rest_framework.test import APIClient

from chefops.testing.factories import CateringFactory, ClientFactory, UserFactory
from companies.authentication import access_token_for
from companies.models import AuthSession, Company, Role, User


def session_access_token(user: User) -> str:
    """An access token of a new login session of ``user``, as a login would issue it
    (without the password check and the bookkeeping of a login). Access tokens are valid
    only while their session lives."""
    now = timezone.now()
    session = AuthSession.objects.create(
        user=user, created_at=now, expires_at=now + timedelta(days=7)
    )
    return access_token_for(user, session_id=session.id)


@dataclass
class Tenant:
    company: Company
    admin: User
    manager: User
    employee: User

    def user(self, role: str) -> User:
        return {Role.ADMIN: self.admin, Role.MANAGER: self.manager, Role.EMPLOYEE: self.employee}[
            Role(role)
        ]


def make_tenant(company: Company) -> Tenant:
    slug = company.email.split("@")[0]
    return Tenant(
        company=company,
        admin=UserFactory.create(company=company, role=Role.ADMIN, email=company.email),
        manager=UserFactory.create(
            company=company, role=Role.MANAGER, email=f"{slug}.manager@example.com"
        ),
        employee=UserFactory.create(
            company=company, role=Role.EMPLOYEE, email=f"{slug}.employee@example.com"
        ),
    )


@dataclass
class Cast:
    catering: Tenant
    other_catering: Tenant
    client: Tenant
    other_client: Tenant

    @staticmethod
    def api(user: User | None = None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {session_access_token(user)}")
        return client


def make_cast() -> Cast:
    return Cast(
        catering=make_tenant(
            CateringFactory.create(name="Delicias del Sur", email="delicias@example.com")
        ),
        other_catering=make_tenant(
            CateringFactory.create(name="Sabores Corporativos", email="sabores@example.com")
        ),
        client=make_tenant(
            ClientFactory.create(name="TechCorp Argentina", email="techcorp@example.com")
        ),
        other_client=make_tenant(
            ClientFactory.create(name="Startup Hub", email="startup@example.com")
        ),
    )
