"""The API's bodies, byte for byte, on a fixed dataset (issue #18: "no behaviour changes").

One scenario builds a deterministic dataset (explicit ids, names, quantities and timestamps,
created under a stopped clock), then calls every read the frontend makes, twice each (the
second answer comes from the read cache), and the writes whose bodies it reads, through the
real HTTP stack with bearer tokens. Each exchange is recorded as the request line, the status,
the headers a client reads (Content-Type, X-Total-Count, Link, Content-Disposition) and the
raw body, and compared byte for byte with ``chefops/tests/golden/<name>.http``.

The golden files are the same for SQLite and PostgreSQL: a byte that differs between the
backends is a bug. They were written from the code before the response shapes were
refactored; regenerate them only for a deliberate change of the wire format, with
``GOLDEN_UPDATE=1`` (docs/testing.md), and review the diff.
"""

from __future__ import annotations

import difflib
import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from chefops.testing.cast import session_access_token
from companies.models import (
    CateringProfile,
    ClientOfficeDay,
    ClientProfile,
    Company,
    CompanyType,
    Role,
    User,
    WorkMode,
)
from contracts.models import Contract, ContractStatus, ContractWeekday
from servicedays.models import ServiceDay, ServiceDayStatus

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("GOLDEN_UPDATE") == "1"
HEADERS = ("Content-Type", "X-Total-Count", "Link", "Content-Disposition")

# Wednesday; sub-millisecond digits everywhere, so truncation to milliseconds is exercised.
NOW = datetime(2026, 3, 18, 10, 15, 30, 123456, tzinfo=UTC)


def _id(kind: int, number: int) -> uuid.UUID:
    return uuid.UUID(f"{kind:08x}-0000-4000-8000-{number:012x}")


COMPANY, USER, CONTRACT, DAY = 0xC0, 0xA0, 0xCC, 0xD0
CAT_A, CAT_B, CLI_X, CLI_Y = (_id(COMPANY, n) for n in (1, 2, 3, 4))
K1, K2, K3, K4, K_NEW = (_id(CONTRACT, n) for n in (1, 2, 3, 4, 5))


def _at(moment: datetime) -> Any:
    return time_machine.travel(moment, tick=False)


def _company(
    pk: uuid.UUID, kind: str, name: str, email: str, tax_id: str | None, created: datetime
) -> Company:
    with _at(created):
        return Company.objects.create(
            id=pk, company_type=kind, name=name, email=email, tax_id=tax_id
        )


def _users(company: Company, number: int, slug: str, created: datetime) -> dict[str, User]:
    users: dict[str, User] = {}
    for offset, (role, person) in enumerate(
        [(Role.ADMIN, "Ana"), (Role.MANAGER, "Martín"), (Role.EMPLOYEE, "Eva")]
    ):
        with _at(created + timedelta(seconds=offset, microseconds=offset * 1001)):
            user = User(
                id=_id(USER, number * 10 + offset),
                email=company.email if role == Role.ADMIN else f"{slug}.{role.lower()}@example.com",
                name=f"{person} {company.name.split()[0]}",
                role=role,
                company=company,
            )
            user.password = "!golden-unusable"  # an unusable hash: "!" never matches
            user.save()
        users[role] = user
    return users


def _contract(
    pk: uuid.UUID,
    catering: Company,
    client: Company,
    created: datetime,
    weekdays: list[int],
    **values: Any,
) -> Contract:
    with _at(created):
        contract = Contract.objects.create(
            id=pk, catering_company=catering, client_company=client, **values
        )
        for day in weekdays:
            ContractWeekday.objects.create(contract=contract, day_of_week=day)
    return contract


def _days(
    contract: Contract,
    number: int,
    first: date,
    last: date,
    weekdays: set[int],
    today: date,
    waiting: frozenset[date] = frozenset(),
) -> None:
    """The contract's weekdays in [first, last]: days before ``today`` mostly confirmed, with
    quantities and timestamps from fixed formulas; the ``waiting`` days have no expected
    quantity yet."""
    created = datetime(first.year, first.month, first.day, 2, 0, 0, 1, tzinfo=UTC) - timedelta(
        days=3
    )
    rows = []
    current, index = first, 0
    while current <= last:
        if current.isoweekday() in weekdays:
            index += 1
            midnight = datetime(current.year, current.month, current.day, tzinfo=UTC)
            expected = 30 + (index * 7) % 25
            values: dict[str, Any] = {"status": ServiceDayStatus.PENDING}
            if index % 6 != 5 and current not in waiting:  # every sixth day never got one
                values["expected_quantity"] = expected
                values["expected_confirmed_at"] = midnight - timedelta(
                    days=2, hours=7, minutes=14, seconds=47, microseconds=654322
                )
            if current < today and index % 4 != 3:
                values.update(
                    status=ServiceDayStatus.CONFIRMED,
                    served_quantity=_served(index, expected),
                    served_confirmed_at=midnight + timedelta(hours=18, microseconds=999999),
                )
            updated = max(
                [created]
                + [
                    values[k]
                    for k in ("expected_confirmed_at", "served_confirmed_at")
                    if k in values
                ]
            )
            rows.append(
                ServiceDay(
                    id=_id(DAY, number * 1000 + index),
                    contract=contract,
                    service_date=current,
                    created_at=created,
                    updated_at=updated,
                    **values,
                )
            )
        current += timedelta(days=1)
    ServiceDay.objects.bulk_create(rows)


def _served(index: int, expected: int) -> int:
    if index % 13 == 0:
        return 0
    if index % 7 == 0:  # more than 10 % off: the deviation KPI counts its contract
        return expected // 2 + 1
    return expected + (index * 5) % 11 - 5


@dataclass
class Dataset:
    users: dict[uuid.UUID, dict[str, User]]
    day_to_serve: uuid.UUID
    day_to_expect: uuid.UUID


def build_dataset() -> Dataset:
    t0 = datetime(2025, 5, 2, 8, 0, 0, 250999, tzinfo=UTC)
    a = _company(
        CAT_A, CompanyType.CATERING, 'Delicias del Sur, "La Casa"', "delicias@example.com",
        "30-11111111-1", t0,
    )  # fmt: skip
    b = _company(
        CAT_B, CompanyType.CATERING, "Sabores Corporativos", "sabores@example.com", None,
        t0 + timedelta(minutes=1),
    )  # fmt: skip
    x = _company(
        CLI_X, CompanyType.CLIENT, "TechCorp Argentina", "techcorp@example.com",
        "30-22222222-2", t0 + timedelta(minutes=2, microseconds=1),
    )  # fmt: skip
    y = _company(
        CLI_Y, CompanyType.CLIENT, "Café Ñandú S.A.", "cafe@example.com", None,
        t0 + timedelta(minutes=3, microseconds=999),
    )  # fmt: skip
    CateringProfile.objects.create(company=a, daily_capacity=500)
    CateringProfile.objects.create(company=b, daily_capacity=120)
    ClientProfile.objects.create(company=x, work_mode=WorkMode.HYBRID)
    ClientProfile.objects.create(company=y, work_mode=WorkMode.ONSITE)
    for company, days in ((x, [1, 3, 5]), (y, [5, 2])):
        for day in days:
            ClientOfficeDay.objects.create(company=company, day_of_week=day)
    users = {
        company.pk: _users(company, number, slug, t0 + timedelta(hours=number))
        for number, (company, slug) in enumerate(
            [(a, "delicias"), (b, "sabores"), (x, "techcorp"), (y, "cafe")], start=1
        )
    }

    k4 = _contract(
        K4, a, x, datetime(2025, 6, 1, 12, 0, 0, 500000, tzinfo=UTC), [2],
        start_date=date(2025, 6, 1), end_date=date(2025, 12, 31),
        price_per_service=Decimal("9.90"), min_daily_quantity=5, max_daily_quantity=60,
        notice_period_hours=12, status=ContractStatus.TERMINATED,
    )  # fmt: skip
    k3 = _contract(
        K3, b, x, datetime(2025, 11, 1, tzinfo=UTC), [2, 4],
        start_date=date(2025, 11, 1), end_date=date(2026, 1, 31),
        price_per_service=Decimal("19.99"), min_daily_quantity=20, max_daily_quantity=80,
        notice_period_hours=24, status=ContractStatus.TERMINATED,
    )  # fmt: skip
    k1 = _contract(
        K1, a, x, datetime(2026, 1, 5, 9, 0, 0, 987654, tzinfo=UTC), [1, 3, 5],
        start_date=date(2026, 1, 5), end_date=None,
        price_per_service=Decimal("15.50"), min_daily_quantity=10, max_daily_quantity=100,
        notice_period_hours=24,
    )  # fmt: skip
    k2 = _contract(
        K2, a, y, datetime(2026, 1, 20, 14, 30, 15, 500, tzinfo=UTC), [6, 1, 7],
        start_date=date(2026, 2, 1), end_date=date(2026, 12, 31),
        price_per_service=Decimal("1234.56"), flexible_quantity=False, min_daily_quantity=0,
        max_daily_quantity=40, notice_period_hours=48,
    )  # fmt: skip
    with _at(datetime(2026, 2, 10, 7, 5, 9, 10, tzinfo=UTC)):
        k2.status = ContractStatus.PAUSED
        k2.save()

    today = NOW.date()
    _days(k4, 4, date(2025, 11, 1), date(2025, 12, 31), {2}, today)
    _days(k3, 3, date(2026, 1, 1), date(2026, 1, 31), {2, 4}, today)
    _days(
        k1, 1, date(2026, 2, 2), date(2026, 3, 27), {1, 3, 5}, today,
        waiting=frozenset({date(2026, 3, 20)}),
    )  # fmt: skip
    _days(k2, 2, date(2026, 2, 1), date(2026, 3, 22), {6, 1, 7}, today)
    # The two days the confirmations below act on: served quantity on today's Monday,
    # expected quantity on Friday (before the 24 h notice deadline).
    serve = ServiceDay.objects.get(contract=k1, service_date=date(2026, 3, 16))
    expect = ServiceDay.objects.get(contract=k1, service_date=date(2026, 3, 20))
    assert serve.status == ServiceDayStatus.PENDING and serve.expected_quantity is not None
    assert expect.expected_quantity is None
    return Dataset(users=users, day_to_serve=serve.pk, day_to_expect=expect.pk)


# --- Recording -------------------------------------------------------------------------------


def record(method: str, path: str, response: Any) -> bytes:
    head = [f"{method} {path}", f"HTTP {response.status_code}"]
    head += [f"{name}: {response[name]}" for name in HEADERS if response.has_header(name)]
    return ("\n".join(head) + "\n\n").encode() + response.content


@dataclass
class Golden:
    written: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def check(self, name: str, actual: bytes) -> None:
        assert name not in self.seen, f"golden name used twice: {name}"
        self.seen.add(name)
        path = GOLDEN / f"{name}.http"
        if UPDATE:
            if not path.exists() or path.read_bytes() != actual:
                path.write_bytes(actual)
                self.written.append(name)
            return
        if not path.exists():
            self.mismatches.append(f"{name}: no golden file (GOLDEN_UPDATE=1 writes it)")
            return
        expected = path.read_bytes()
        if expected != actual:
            diff = difflib.unified_diff(
                expected.decode(errors="backslashreplace").splitlines(),
                actual.decode(errors="backslashreplace").splitlines(),
                "golden",
                "actual",
                lineterm="",
            )
            self.mismatches.append(f"{name}:\n" + "\n".join(diff))

    def finish(self) -> None:
        if UPDATE:
            stale = sorted(p.stem for p in GOLDEN.glob("*.http") if p.stem not in self.seen)
            for name in stale:
                (GOLDEN / f"{name}.http").unlink()
            pytest.skip(f"GOLDEN_UPDATE=1: wrote {self.written}, removed {stale}; review the diff")
        assert not self.mismatches, "bodies differ from the golden files:\n" + "\n\n".join(
            self.mismatches
        )


@pytest.fixture
def fixed_contract_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """The contract a create makes gets a known id (the default is uuid4)."""
    monkeypatch.setattr(Contract._meta.pk, "_get_default", lambda: K_NEW)


# --- The scenario ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_bodies_match_the_golden_files(fixed_contract_id: None) -> None:
    GOLDEN.mkdir(exist_ok=True)
    golden = Golden()
    with _at(NOW):
        data = build_dataset()
        clients = {
            (company, role): _client(user)
            for company, by_role in data.users.items()
            for role, user in by_role.items()
        }

        def get(name: str, company: uuid.UUID, role: str, path: str) -> None:
            client = clients[(company, role)]
            first = record("GET", path, client.get(path))
            golden.check(name, first)
            again = record("GET", path, client.get(path))
            assert again == first, f"{name}: a repeated (cached) read answered differently"

        def post(name: str, company: uuid.UUID, role: str, path: str, body: Any) -> None:
            client = clients[(company, role)]
            response = client.post(path, data=json.dumps(body), content_type="application/json")
            golden.check(name, record("POST", path, response))

        reads(get, data)
        writes(post, data)
        after_writes(get)
    golden.finish()


def _client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {session_access_token(user)}")
    return client


def reads(get: Any, data: Dataset) -> None:
    admin, manager, employee = Role.ADMIN, Role.MANAGER, Role.EMPLOYEE
    # Contracts: list (every status, one status, paged), detail.
    get("contracts-list-caterer", CAT_A, employee, "/api/contracts")
    get("contracts-list-client", CLI_X, manager, "/api/contracts")
    get("contracts-list-active", CAT_A, employee, "/api/contracts?status=ACTIVE")
    get("contracts-list-terminated", CLI_X, employee, "/api/contracts?status=TERMINATED")
    get("contracts-list-page-1", CAT_A, admin, "/api/contracts?limit=2")
    get("contracts-list-page-2", CAT_A, admin, "/api/contracts?page=2&limit=2")
    get("contracts-list-past-end", CAT_A, admin, "/api/contracts?page=5&limit=2")
    get("contracts-list-empty-status", CLI_Y, employee, "/api/contracts?status=ACTIVE")
    get("contract-detail-active", CLI_X, employee, f"/api/contracts/{K1}")
    get("contract-detail-paused", CAT_A, manager, f"/api/contracts/{K2}")
    get("contract-detail-forbidden", CAT_B, employee, f"/api/contracts/{K1}")

    # Service days: the one-query first page, the generic pages, an empty range, errors.
    days = f"/api/contracts/{K1}/service-days"
    get("service-days-range", CLI_X, employee, f"{days}?from=2026-02-01&to=2026-03-31")
    get("service-days-range-caterer", CAT_A, employee, f"{days}?from=2026-03-01&to=2026-03-20")
    get("service-days-page-1", CLI_X, employee, f"{days}?from=2026-02-01&to=2026-03-31&limit=5")
    get(
        "service-days-page-2",
        CLI_X,
        employee,
        f"{days}?from=2026-02-01&to=2026-03-31&page=2&limit=5",
    )
    get("service-days-empty", CLI_X, employee, f"{days}?from=2027-01-01&to=2027-01-31")
    get(
        "service-days-paused-contract",
        CLI_Y,
        employee,
        f"/api/contracts/{K2}/service-days?from=2026-03-01T12:00:00.000Z&to=2026-03-31",
    )
    get("service-days-forbidden", CLI_Y, employee, f"{days}?from=2026-02-01&to=2026-03-31")

    # Weekly report: JSON and CSV, this week, a past week, an instant, a week with no days.
    report = f"/api/contracts/{K1}/reports/weekly"
    get("report-this-week", CLI_X, employee, f"{report}?weekStart=2026-03-16")
    get("report-past-week", CAT_A, employee, f"{report}?weekStart=2026-02-09")
    get("report-instant", CLI_X, employee, f"{report}?weekStart=2026-02-11T15:30:00.250Z")
    get("report-empty-week", CLI_X, employee, f"{report}?weekStart=2027-01-04")
    get(
        "report-paused-contract",
        CLI_Y,
        employee,
        f"/api/contracts/{K2}/reports/weekly?weekStart=2026-03-09",
    )
    get("report-csv-this-week", CLI_X, employee, f"{report}/csv?weekStart=2026-03-16")
    get("report-csv-past-week", CAT_A, manager, f"{report}/csv?weekStart=2026-02-09")
    get(
        "report-csv-paused-contract",
        CAT_A,
        employee,
        f"/api/contracts/{K2}/reports/weekly/csv?weekStart=2026-03-09",
    )

    # Finance metrics: both clients and both caterers.
    metrics = "/api/contracts/finance-metrics"
    get("metrics-client", CLI_X, employee, metrics)
    get("metrics-client-other", CLI_Y, admin, metrics)
    get("metrics-caterer", CAT_A, employee, metrics)
    get("metrics-caterer-other", CAT_B, manager, metrics)

    # The profile reads of the frontend.
    get("session-status", CLI_X, employee, "/api/auth/session-status")
    get("users-list", CAT_A, admin, "/api/users")
    get("user-detail", CLI_X, admin, f"/api/users/{data.users[CLI_X][Role.MANAGER].pk}")
    get("caterings-list", CLI_X, employee, "/api/caterings")
    get("catering-detail", CAT_A, employee, f"/api/caterings/{CAT_A}")
    get("clients-list", CAT_A, employee, "/api/clients")
    get("client-detail", CLI_Y, employee, f"/api/clients/{CLI_Y}")


def writes(post: Any, data: Dataset) -> None:
    post(
        "confirm-expected",
        CLI_X,
        Role.EMPLOYEE,
        f"/api/service-days/{data.day_to_expect}/confirm-expected",
        {"expectedQuantity": 42},
    )
    post(
        "confirm-served",
        CAT_A,
        Role.EMPLOYEE,
        f"/api/service-days/{data.day_to_serve}/confirm-served",
        {"servedQuantity": 37},
    )
    post(
        "contract-create",
        CAT_B,
        Role.MANAGER,
        "/api/contracts",
        {
            "cateringCompanyId": str(CAT_B),
            "clientCompanyId": str(CLI_Y),
            "startDate": "2026-04-01",
            "endDate": "2026-09-30",
            "pricePerService": 22.75,
            "flexibleQuantity": False,
            "minDailyQuantity": 15,
            "maxDailyQuantity": 45,
            "noticePeriodHours": 36,
            "serviceDays": [4, 2],
        },
    )
    post("contract-pause", CLI_X, Role.MANAGER, f"/api/contracts/{K1}/pause", None)
    post("contract-resume", CLI_X, Role.MANAGER, f"/api/contracts/{K1}/resume", None)


def after_writes(get: Any) -> None:
    """The reads the writes changed (the cached answers must not be served)."""
    get(
        "after-service-days-range",
        CLI_X,
        Role.EMPLOYEE,
        f"/api/contracts/{K1}/service-days?from=2026-03-09&to=2026-03-27",
    )
    get(
        "after-report-this-week",
        CAT_A,
        Role.EMPLOYEE,
        f"/api/contracts/{K1}/reports/weekly?weekStart=2026-03-16",
    )
    get("after-metrics-caterer", CAT_A, Role.EMPLOYEE, "/api/contracts/finance-metrics")
    get("after-contracts-list", CLI_Y, Role.EMPLOYEE, "/api/contracts")
