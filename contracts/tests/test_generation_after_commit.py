"""A contract that becomes ACTIVE gets its service days of the generation window at once.

Created (POST /api/contracts) or resumed from PAUSED, the contract's days of today .. today + 7
are generated after the commit by the daily job's code for that contract (a Celery task,
eager in tests), not at the next midnight. A resume fills in only the window ahead, never the
paused weeks, and keeps the days that exist.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine

from chefops.testing.cast import Cast
from chefops.testing.factories import ContractFactory
from contracts.models import Contract, ContractStatus
from contracts.tests.helpers import create_body, get, post
from servicedays import jobs
from servicedays.models import ServiceDay, ServiceDayStatus

NOW = datetime(2026, 11, 26, 10, 15, tzinfo=UTC)  # a Thursday: the window is Nov 26 .. Dec 3
WINDOW = "from=2026-11-26&to=2026-12-03"
MON_WED_FRI = ["2026-11-27", "2026-11-30", "2026-12-02"]


def dates(contract_id: Any) -> list[str]:
    return [
        d.isoformat()
        for d in ServiceDay.objects.filter(contract_id=contract_id)
        .order_by("service_date")
        .values_list("service_date", flat=True)
    ]


def generations(callbacks: list[Callable[[], Any]]) -> list[Callable[[], Any]]:
    return [cb for cb in callbacks if "generate_for_contract_on_commit" in cb.__qualname__]


@pytest.mark.django_db(transaction=True)
def test_a_created_contract_has_its_days_right_after_the_201(cast: Cast, settings: Any) -> None:
    settings.READ_CACHE_SECONDS = 300  # the list read below goes through the read cache
    with time_machine.travel(NOW, tick=False):
        res = post(cast.api(cast.client.manager), "/api/contracts", create_body(cast))
        assert res.status_code == 201, res.content
        contract_id = res.json()["id"]
        assert dates(contract_id) == MON_WED_FRI
        listed = get(
            cast.api(cast.catering.employee), f"/api/contracts/{contract_id}/service-days?{WINDOW}"
        )
        assert [d["serviceDate"] for d in listed.json()] == MON_WED_FRI
        assert {d["status"] for d in listed.json()} == {ServiceDayStatus.PENDING}
        # The same rows the daily job makes: at midnight it has nothing left to add.
        assert jobs.service_days_generate_upcoming(now=NOW).inserted == 0
    assert dates(contract_id) == MON_WED_FRI


@pytest.mark.django_db
def test_generation_waits_for_the_commit_and_a_refused_create_queues_nothing(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    with time_machine.travel(NOW, tick=False):
        api = cast.api(cast.client.manager)
        with django_capture_on_commit_callbacks() as callbacks:
            res = post(api, "/api/contracts", create_body(cast, startDate="2026-11-30"))
        assert res.status_code == 201
        contract_id = res.json()["id"]
        assert not ServiceDay.objects.exists()  # nothing before the commit
        (generate,) = generations(callbacks)
        generate()
        # Inside the contract's period only: it starts on Monday the 30th.
        assert dates(contract_id) == ["2026-11-30", "2026-12-02"]

        with django_capture_on_commit_callbacks() as callbacks:
            again = post(api, "/api/contracts", create_body(cast))
        assert again.status_code == 409
        assert not generations(callbacks)


@pytest.mark.django_db
def test_a_resume_generates_the_window_and_keeps_the_existing_days(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    contract = ContractFactory.create(
        catering_company=cast.catering.company,
        client_company=cast.client.company,
        start_date=date(2026, 9, 1),
        status=ContractStatus.PAUSED,
    )
    # A day made before the pause, already served: the resume must leave it alone.
    ServiceDay.objects.create(
        contract=contract,
        service_date=date(2026, 11, 27),
        expected_quantity=40,
        served_quantity=38,
        status=ServiceDayStatus.CONFIRMED,
    )
    with time_machine.travel(NOW, tick=False):
        api = cast.api(cast.client.manager)
        with django_capture_on_commit_callbacks(execute=True):
            assert post(api, f"/api/contracts/{contract.pk}/resume").status_code == 201
        # The window only: the weeks it was paused stay without service days.
        assert dates(contract.pk) == MON_WED_FRI
        kept = ServiceDay.objects.get(contract=contract, service_date=date(2026, 11, 27))
        assert (kept.expected_quantity, kept.served_quantity) == (40, 38)

        # Pausing generates nothing; resuming again inserts nothing twice.
        ServiceDay.objects.filter(contract=contract, service_date__gt=date(2026, 11, 27)).delete()
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            assert post(api, f"/api/contracts/{contract.pk}/pause").status_code == 201
        assert not generations(callbacks)
        assert dates(contract.pk) == ["2026-11-27"]
        with django_capture_on_commit_callbacks(execute=True):
            assert post(api, f"/api/contracts/{contract.pk}/resume").status_code == 201
            assert post(api, f"/api/contracts/{contract.pk}/pause").status_code == 201
            assert post(api, f"/api/contracts/{contract.pk}/resume").status_code == 201
        assert dates(contract.pk) == MON_WED_FRI


@pytest.mark.django_db
def test_a_terminated_or_paused_contract_gets_no_days(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    contract = ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company
    )
    with time_machine.travel(NOW, tick=False):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            api = cast.api(cast.client.manager)
            assert post(api, f"/api/contracts/{contract.pk}/terminate").status_code == 201
        assert not generations(callbacks)
        # The task itself checks the status when it runs (a pause may come first).
        assert jobs.service_days_generate_for_contracts([contract.pk]) == 0
    assert not ServiceDay.objects.exists()
    assert Contract.objects.get().status == ContractStatus.TERMINATED
