"""contracts.services: events in the same transaction, staff actors, and the race paths."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, connections, transaction

from chefops.api.errors import BadRequest, Conflict, DomainError, Forbidden, NotFound
from chefops.testing.cast import Cast
from chefops.testing.factories import ContractFactory
from companies.models import User
from contracts import services
from contracts.models import Contract, ContractStatus
from outbox.models import OutboxEvent


def create_kwargs(cast: Cast, **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "catering_company_id": cast.catering.company.id,
        "client_company_id": cast.client.company.id,
        "price_per_service": Decimal("15.50"),
        "min_daily_quantity": 20,
        "max_daily_quantity": 80,
        "notice_period_hours": 24,
        "service_days": [1, 3, 5],
    }
    kwargs.update(overrides)
    return kwargs


TRANSITIONS: list[tuple[Callable[..., Contract], str, str]] = [
    (services.contract_pause, ContractStatus.ACTIVE, "contract.paused"),
    (services.contract_resume, ContractStatus.PAUSED, "contract.resumed"),
    (services.contract_terminate, ContractStatus.ACTIVE, "contract.terminated"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("service", "start", "event_type"), TRANSITIONS)
def test_each_transition_writes_exactly_one_event(
    cast: Cast, service: Callable[..., Contract], start: str, event_type: str
) -> None:
    contract = ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company, status=start
    )
    service(contract_id=contract.id, actor=cast.client.manager)
    assert list(OutboxEvent.objects.values_list("event_type", "aggregate_id")) == [
        (event_type, str(contract.id))
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("service", "start", "event_type"), TRANSITIONS)
def test_a_failure_after_the_write_leaves_neither_change_nor_event(
    cast: Cast, service: Callable[..., Contract], start: str, event_type: str
) -> None:
    contract = ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company, status=start
    )

    def change_then_fail() -> None:
        with transaction.atomic():
            changed = service(contract_id=contract.id, actor=cast.client.manager)
            assert changed.status != start
            assert OutboxEvent.objects.filter(event_type=event_type).count() == 1
            raise RuntimeError("after the write")

    with pytest.raises(RuntimeError, match="after the write"):
        change_then_fail()
    contract.refresh_from_db()
    assert contract.status == start
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_failure_after_create_leaves_neither_contract_nor_event(cast: Cast) -> None:
    def create_then_fail() -> None:
        with transaction.atomic():
            services.contract_create(actor=cast.client.manager, **create_kwargs(cast))
            assert Contract.objects.count() == 1
            raise RuntimeError("after the write")

    with pytest.raises(RuntimeError, match="after the write"):
        create_then_fail()
    assert not Contract.objects.exists()
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db
def test_staff_can_act_without_being_a_party(cast: Cast) -> None:
    staff = User.objects.create_superuser("ops@chefops.local", "pw-for-tests-only")
    contract = services.contract_create(actor=staff, **create_kwargs(cast))
    services.contract_pause(contract_id=contract.id, actor=staff)
    event = OutboxEvent.objects.latest("created_at")
    assert event.metadata["actorUserId"] == str(staff.id)
    assert event.metadata["actorCompanyId"] is None


@pytest.mark.django_db
def test_service_checks_roles_and_days_for_every_caller(cast: Cast, contract: Contract) -> None:
    with pytest.raises(Forbidden):
        services.contract_create(actor=cast.catering.employee, **create_kwargs(cast))
    with pytest.raises(Forbidden):
        services.contract_pause(contract_id=contract.id, actor=cast.client.employee)
    with pytest.raises(BadRequest) as exc:
        services.contract_create(actor=None, **create_kwargs(cast, service_days=[3, 3]))
    assert exc.value.message == ["serviceDays must not contain duplicate values"]


# --- races on PostgreSQL ----------------------------------------------------------------------


def _in_thread(target: Callable[[], Any], results: dict[str, Any], name: str) -> threading.Thread:
    def run() -> None:
        try:
            results[name] = target()
        except DomainError as exc:
            results[name] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _wait_until_a_backend_waits_for_a_lock(timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
    raise AssertionError("no backend ever waited for the row lock")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_create_loses_a_race_on_the_unique_index_with_a_409(cast: Cast) -> None:
    """The loser passes the pre-check (the winner has not committed) and then waits on the
    partial unique index; when the winner commits it gets the IntegrityError, turned into 409."""
    winner_inserted, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def winner() -> Contract:
        with transaction.atomic():
            contract = services.contract_create(actor=cast.client.manager, **create_kwargs(cast))
            winner_inserted.set()
            release.wait(10)
        return contract

    first = _in_thread(winner, results, "first")
    assert winner_inserted.wait(10)
    second = _in_thread(
        lambda: services.contract_create(actor=cast.catering.manager, **create_kwargs(cast)),
        results,
        "second",
    )
    _wait_until_a_backend_waits_for_a_lock()
    release.set()
    first.join(10)
    second.join(10)
    assert isinstance(results["first"], Contract)
    conflict = results["second"]
    assert isinstance(conflict, Conflict)
    assert conflict.message == (
        'An active contract already exists between "Delicias del Sur" and "TechCorp Argentina"'
    )
    assert Contract.objects.filter(status=ContractStatus.ACTIVE).count() == 1
    assert OutboxEvent.objects.filter(event_type="contract.created").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_resumes_of_one_pair_at_once_give_one_409(cast: Cast) -> None:
    a, b = (
        ContractFactory.create(
            catering_company=cast.catering.company,
            client_company=cast.client.company,
            status=ContractStatus.PAUSED,
        )
        for _ in range(2)
    )
    first_resumed, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def winner() -> Contract:
        with transaction.atomic():
            contract = services.contract_resume(contract_id=a.id, actor=cast.client.manager)
            first_resumed.set()
            release.wait(10)
        return contract

    first = _in_thread(winner, results, "first")
    assert first_resumed.wait(10)
    second = _in_thread(
        lambda: services.contract_resume(contract_id=b.id, actor=cast.client.admin),
        results,
        "second",
    )
    _wait_until_a_backend_waits_for_a_lock()
    release.set()
    first.join(10)
    second.join(10)
    assert isinstance(results["first"], Contract)
    assert isinstance(results["second"], Conflict)
    b.refresh_from_db()
    assert b.status == ContractStatus.PAUSED
    assert OutboxEvent.objects.filter(event_type="contract.resumed").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_api_creates_for_one_pair_at_once_give_201_and_409(cast: Cast) -> None:
    from contracts.tests.helpers import create_body

    barrier = threading.Barrier(2, timeout=60)
    statuses: list[int] = []

    def create(user: User) -> None:
        api = cast.api(user)
        barrier.wait()
        try:
            statuses.append(
                api.post("/api/contracts", create_body(cast), format="json").status_code
            )
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=create, args=(user,), daemon=True)
        for user in (cast.client.manager, cast.catering.manager)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(statuses) == [201, 409]
    assert Contract.objects.count() == 1
    assert OutboxEvent.objects.filter(event_type="contract.created").count() == 1


# --- the terms ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_staff_change_terms_and_every_rule_applies(cast: Cast, contract: Contract) -> None:
    staff = User.objects.create_superuser("ops@chefops.local", "pw-for-tests-only")
    for company_user in (cast.client.admin, cast.catering.manager):
        with pytest.raises(Forbidden) as denied:
            services.contract_update_terms(
                contract_id=contract.id, actor=company_user, data={"max_daily_quantity": 90}
            )
        assert denied.value.message == "Only platform staff can change the terms of a contract"
    with pytest.raises(BadRequest) as refused:
        services.contract_update_terms(
            contract_id=contract.id,
            actor=staff,
            data={"min_daily_quantity": 81, "service_days": [2, 2], "notice_period_hours": -1},
        )
    assert refused.value.message == [
        "noticePeriodHours must not be less than 0",
        "minDailyQuantity cannot be greater than maxDailyQuantity",
        "serviceDays must not contain duplicate values",
    ]
    with pytest.raises(NotFound):
        services.contract_update_terms(contract_id=uuid.uuid4(), actor=staff, data={})
    with pytest.raises(TypeError):
        services.contract_update_terms(contract_id=contract.id, actor=staff, data={"status": "X"})
    Contract.objects.filter(pk=contract.pk).update(status=ContractStatus.TERMINATED)
    with pytest.raises(BadRequest) as terminated:
        services.contract_update_terms(
            contract_id=contract.id, actor=staff, data={"max_daily_quantity": 90}
        )
    assert terminated.value.message == "Cannot change the terms of a terminated contract"
    assert not OutboxEvent.objects.exists()


@pytest.mark.postgres  # SQLite stores any number
@pytest.mark.django_db
def test_a_database_refusal_of_the_terms_is_a_400(cast: Cast, contract: Contract) -> None:
    """What the rules let through and a column cannot hold (a price of 10^10 or more)."""
    with pytest.raises(BadRequest) as refused:
        services.contract_update_terms(
            contract_id=contract.id,
            actor=None,
            data={"price_per_service": Decimal("12345678901.00")},
        )
    assert refused.value.message == "The new terms are outside what a contract can hold"
    contract.refresh_from_db()
    assert contract.price_per_service == Decimal("15.50")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_confirmation_in_flight_wins_over_a_change_of_weekdays(cast: Cast) -> None:
    """The terms change locks the days ahead: it waits for the confirmation's commit, then
    sees the day confirmed and refuses, instead of deleting a confirmed day."""
    from servicedays.models import ServiceDay
    from servicedays.tests.helpers import make_day

    contract = ContractFactory.create(
        catering_company=cast.catering.company,
        client_company=cast.client.company,
        start_date=date(2020, 1, 1),
        weekdays=[1, 3],
    )
    monday = make_day(contract, date(2999, 1, 7))  # a Monday, far ahead
    confirming, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def confirmation() -> None:
        with transaction.atomic():
            day = ServiceDay.objects.select_for_update().get(pk=monday.pk)
            day.expected_quantity = 30
            day.save(update_fields=["expected_quantity"])
            confirming.set()
            release.wait(10)

    first = _in_thread(confirmation, results, "confirmation")
    assert confirming.wait(10)
    second = _in_thread(
        lambda: services.contract_update_terms(
            contract_id=contract.id, actor=None, data={"service_days": [3]}
        ),
        results,
        "terms",
    )
    _wait_until_a_backend_waits_for_a_lock()
    release.set()
    first.join(10)
    second.join(10)
    assert isinstance(results["terms"], Conflict)
    assert ServiceDay.objects.get(pk=monday.pk).expected_quantity == 30
    assert list(contract.weekdays.values_list("day_of_week", flat=True)) == [1, 3]
