"""Demo companies and users (reference §7), loaded by `manage.py seed_demo` and `POST /api/seed`.

Seven companies with the reference's names, e-mails, tax ids and profiles; each gets an
ADMIN (the company e-mail, so the frontend's "company login" works), a MANAGER
(``<name>.manager@example.com``) and an EMPLOYEE (``<name>.employee@example.com``). Every
password is ``password123``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.contrib.auth.hashers import make_password
from django.db import transaction

from companies.models import (
    CateringProfile,
    ClientOfficeDay,
    ClientProfile,
    Company,
    CompanyType,
    Role,
    User,
)

DEMO_PASSWORD = "password123"  # noqa: S105 - not a secret

CATERINGS: list[tuple[str, str, str, int]] = [
    ("Delicias del Sur", "delicias@example.com", "30-71234567-8", 500),
    ("Sabores Corporativos", "sabores@example.com", "30-89876543-2", 300),
    ("Chef Express", "chef@example.com", "30-55667788-9", 200),
]
CLIENTS: list[tuple[str, str, str, str, list[int]]] = [
    ("TechCorp Argentina", "techcorp@example.com", "30-11223344-5", "HYBRID", [1, 3, 5]),
    ("Finanzas Plus", "finanzas@example.com", "30-99887766-1", "ONSITE", [1, 2, 3, 4, 5]),
    ("Startup Hub", "startup@example.com", "30-44556677-3", "HYBRID", [2, 4]),
    ("Consultora Global", "consultora@example.com", "30-12345678-0", "ONSITE", [1, 2, 3, 4, 5]),
]
ROLE_TITLES = {Role.ADMIN: "Admin", Role.MANAGER: "Manager", Role.EMPLOYEE: "Employee"}


@dataclass(frozen=True)
class DemoLogin:
    email: str
    role: str
    company: str
    company_type: str


def demo_user_email(company_email: str, role: str) -> str:
    if role == Role.ADMIN:
        return company_email
    local, _, domain = company_email.partition("@")
    return f"{local}.{role.lower()}@{domain}"


def demo_logins() -> list[DemoLogin]:
    companies = [(name, email, CompanyType.CATERING) for name, email, *_ in CATERINGS] + [
        (name, email, CompanyType.CLIENT) for name, email, *_ in CLIENTS
    ]
    return [
        DemoLogin(demo_user_email(email, role), role, name, company_type)
        for name, email, company_type in companies
        for role in (Role.ADMIN, Role.MANAGER, Role.EMPLOYEE)
    ]


def seed(*, today: date) -> str:
    """Wipe every company (with its contracts, users and tokens) and load the demo set.

    Platform staff (users without a company) and outbox events are kept, as the original
    keeps its outbox.
    """
    from contracts.models import Contract  # contracts depend on companies, not the reverse

    with transaction.atomic():
        # Contracts protect their parties; deleting them cascades to weekdays and service days.
        Contract.objects.all().delete()
        Company.objects.all().delete()
        # One hash for all demo users: same demo password, and 21 Argon2 hashes would make the
        # seed take seconds. Never do this for real accounts.
        encoded = make_password(DEMO_PASSWORD)
        users: list[User] = []
        for name, email, tax_id, capacity in CATERINGS:
            company = Company.objects.create(
                company_type=CompanyType.CATERING, name=name, email=email, tax_id=tax_id
            )
            CateringProfile.objects.create(company=company, daily_capacity=capacity)
            users.extend(_demo_users(company, encoded))
        for name, email, tax_id, work_mode, days in CLIENTS:
            company = Company.objects.create(
                company_type=CompanyType.CLIENT, name=name, email=email, tax_id=tax_id
            )
            ClientProfile.objects.create(company=company, work_mode=work_mode)
            ClientOfficeDay.objects.bulk_create(
                ClientOfficeDay(company=company, day_of_week=day) for day in days
            )
            users.extend(_demo_users(company, encoded))
        User.objects.bulk_create(users)
    return (
        f"companies: {len(CATERINGS)} caterings, {len(CLIENTS)} clients, {len(users)} users "
        f"(ADMIN, MANAGER, EMPLOYEE each; password {DEMO_PASSWORD})"
    )


def _demo_users(company: Company, encoded_password: str) -> list[User]:
    return [
        User(
            email=demo_user_email(company.email, role),
            name=f"{company.name} {ROLE_TITLES[role]}",
            role=role,
            company=company,
            password=encoded_password,
        )
        for role in (Role.ADMIN, Role.MANAGER, Role.EMPLOYEE)
    ]
