"""Demo data: `manage.py seed_demo` and `POST /api/seed` (SPEC §2.9, reference §3.9/§7)."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from rest_framework.test import APIClient

from chefops.testing.factories import ContractFactory
from companies.demo import DEMO_PASSWORD
from companies.models import Company, Role, User
from companies.tests.utils import error, login, post
from contracts.models import Contract
from outbox.models import OutboxEvent
from servicedays.models import ServiceDay

pytestmark = pytest.mark.django_db

CREDENTIALS = {
    "password": "password123",
    "catering": ["delicias@example.com", "sabores@example.com", "chef@example.com"],
    "clients": [
        "techcorp@example.com",
        "finanzas@example.com",
        "startup@example.com",
        "consultora@example.com",
    ],
}


def test_seed_api_wipes_and_loads_the_demo_set(cast: Any, settings: Any) -> None:
    settings.DEMO_SEED_ENABLED = True
    ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company
    )
    staff = User.objects.create_superuser("ops@example.com", "ops-password-1")
    events_before = list(OutboxEvent.objects.values_list("pk", flat=True))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer stale")  # public: a stale header is ignored
    with time_machine.travel(datetime(2026, 11, 26, 10, tzinfo=UTC), tick=False):
        res = post(client, "/api/seed")
    assert res.status_code == 201
    body = res.json()
    assert body["message"] == "Database seeded successfully"
    assert body["credentials"] == CREDENTIALS
    assert len(body["users"]) == 21
    assert body["users"][:3] == [
        {
            "email": "delicias@example.com",
            "role": "ADMIN",
            "company": "Delicias del Sur",
            "companyType": "CATERING",
        },
        {
            "email": "delicias.manager@example.com",
            "role": "MANAGER",
            "company": "Delicias del Sur",
            "companyType": "CATERING",
        },
        {
            "email": "delicias.employee@example.com",
            "role": "EMPLOYEE",
            "company": "Delicias del Sur",
            "companyType": "CATERING",
        },
    ]
    assert Company.objects.count() == 7
    # The cast's contract was wiped; the demo set is the reference's 5 contracts and their
    # days from Oct 1 (the previous month) to Dec 10 (today + 14): 30 Mon/Wed/Fri, 51
    # weekdays, 21 Tue/Thu and 51 weekdays, and the paused one's 4 days before Oct 12.
    assert Contract.objects.count() == 5
    assert not Contract.objects.filter(client_company=cast.client.company).exists()
    assert ServiceDay.objects.count() == 30 + 51 + 21 + 51 + 4
    assert not OutboxEvent.objects.exclude(pk__in=events_before).exists()  # nobody is e-mailed
    assert User.objects.filter(pk=staff.pk).exists()  # platform staff survive a seed
    assert User.objects.filter(company__isnull=False).count() == 21
    assert Company.objects.get(email="sabores@example.com").tax_id == "30-89876543-2"


def test_seeded_companies_match_the_reference(db: None) -> None:
    call_command("seed_demo", stdout=StringIO())
    rows = {c.email: (c.company_type, c.name, c.tax_id, c.status) for c in Company.objects.all()}
    assert rows == {
        "delicias@example.com": ("CATERING", "Delicias del Sur", "30-71234567-8", "ACTIVE"),
        "sabores@example.com": ("CATERING", "Sabores Corporativos", "30-89876543-2", "ACTIVE"),
        "chef@example.com": ("CATERING", "Chef Express", "30-55667788-9", "ACTIVE"),
        "techcorp@example.com": ("CLIENT", "TechCorp Argentina", "30-11223344-5", "ACTIVE"),
        "finanzas@example.com": ("CLIENT", "Finanzas Plus", "30-99887766-1", "ACTIVE"),
        "startup@example.com": ("CLIENT", "Startup Hub", "30-44556677-3", "ACTIVE"),
        "consultora@example.com": ("CLIENT", "Consultora Global", "30-12345678-0", "ACTIVE"),
    }
    access = login("techcorp.employee@example.com", DEMO_PASSWORD).json()["accessToken"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    caterings = {c["email"]: c["dailyCapacity"] for c in client.get("/api/caterings").json()}
    assert caterings == {
        "delicias@example.com": 500,
        "sabores@example.com": 300,
        "chef@example.com": 200,
    }
    clients = {
        c["email"]: (c["workMode"], c["officeDays"]) for c in client.get("/api/clients").json()
    }
    assert clients == {
        "techcorp@example.com": ("HYBRID", [1, 3, 5]),
        "finanzas@example.com": ("ONSITE", [1, 2, 3, 4, 5]),
        "startup@example.com": ("HYBRID", [2, 4]),
        "consultora@example.com": ("ONSITE", [1, 2, 3, 4, 5]),
    }


def test_seed_command_prints_logins_and_is_repeatable(db: None) -> None:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    assert "password123" in text
    assert "consultora.employee@example.com" in text
    assert Company.objects.count() == 7
    for role in Role.values:
        users = User.objects.filter(role=role)
        assert users.count() == 7
        assert login(users.first().email, DEMO_PASSWORD).status_code == 200  # type: ignore[union-attr]


def test_seed_is_404_when_disabled(db: None, settings: Any) -> None:
    settings.DEMO_SEED_ENABLED = False
    assert error(post(APIClient(), "/api/seed")) == (404, "Cannot POST /api/seed")
    assert not Company.objects.exists()
    assert error(APIClient().get("/api/seed")) == (404, "Cannot GET /api/seed")
