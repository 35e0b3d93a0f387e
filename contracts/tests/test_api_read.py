"""GET /api/contracts and /api/contracts/:id: scope, filter, paging, order, query count."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chefops.testing.cast import Cast
from chefops.testing.factories import ContractFactory
from contracts.models import Contract, ContractStatus
from contracts.tests.helpers import error, get

pytestmark = pytest.mark.django_db

URL = "/api/contracts"


def make_contracts(cast: Cast) -> dict[str, Contract]:
    """Created one second apart so that createdAt order is unambiguous."""
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    specs = {
        "active": (cast.catering, cast.client, ContractStatus.ACTIVE, [5, 1, 3]),
        "paused": (cast.catering, cast.other_client, ContractStatus.PAUSED, [2]),
        "terminated": (cast.catering, cast.client, ContractStatus.TERMINATED, [7]),
        "foreign": (cast.other_catering, cast.other_client, ContractStatus.ACTIVE, [1]),
    }
    made = {}
    for i, (name, (catering, client, status, days)) in enumerate(specs.items()):
        with time_machine.travel(start + timedelta(seconds=i), tick=False):
            made[name] = ContractFactory.create(
                catering_company=catering.company,
                client_company=client.company,
                status=status,
                weekdays=days,
            )
    return made


def ids(response: object) -> list[str]:
    return [item["id"] for item in response.json()]  # type: ignore[attr-defined]


def test_caterer_sees_its_contracts_of_every_status_in_creation_order(cast: Cast) -> None:
    c = make_contracts(cast)
    res = get(cast.api(cast.catering.employee), URL)
    assert res.status_code == 200
    assert ids(res) == [str(c["active"].id), str(c["paused"].id), str(c["terminated"].id)]
    assert res["X-Total-Count"] == "3"
    first = res.json()[0]
    assert first["serviceDays"] == [5, 1, 3]
    assert first["pricePerService"] == 15.5
    assert first["startDate"] == c["active"].start_date.isoformat()
    assert first["createdAt"] == "2026-11-02T09:00:00.000Z"
    assert (first["cateringName"], first["clientName"]) == (
        "Delicias del Sur",
        "TechCorp Argentina",
    )


def names(response: Any) -> list[tuple[str, str]]:
    return [(item["cateringName"], item["clientName"]) for item in response.json()]


def test_each_party_sees_both_names_and_its_own_new_name_at_once(cast: Cast) -> None:
    """The caller's own name is taken from its company, the other party's looked up per row
    (contracts.selectors._party_name): both sides, several counterparties, and a rename."""
    make_contracts(cast)
    catering, client = cast.catering.company, cast.client.company
    other_client, other_catering = cast.other_client.company, cast.other_catering.company
    assert names(get(cast.api(cast.catering.employee), URL)) == [
        (catering.name, client.name),
        (catering.name, other_client.name),
        (catering.name, client.name),
    ]
    assert names(get(cast.api(cast.other_client.admin), URL)) == [
        (catering.name, other_client.name),
        (other_catering.name, other_client.name),
    ]
    caterer_api = cast.api(cast.catering.employee)
    get(caterer_api, URL)  # the principal is cached from here on
    catering.name = "Delicias Renamed"
    catering.save()
    assert {pair[0] for pair in names(get(caterer_api, URL))} == {"Delicias Renamed"}
    assert names(get(cast.api(cast.client.manager), URL)) == [
        ("Delicias Renamed", client.name),
        ("Delicias Renamed", client.name),
    ]


def test_client_sees_its_contracts_as_client(cast: Cast) -> None:
    c = make_contracts(cast)
    assert ids(get(cast.api(cast.client.manager), URL)) == [
        str(c["active"].id),
        str(c["terminated"].id),
    ]
    assert ids(get(cast.api(cast.other_client.admin), URL)) == [
        str(c["paused"].id),
        str(c["foreign"].id),
    ]
    assert ids(get(cast.api(cast.other_catering.employee), URL)) == [str(c["foreign"].id)]


def test_status_filter(cast: Cast) -> None:
    c = make_contracts(cast)
    api = cast.api(cast.catering.admin)
    assert ids(get(api, f"{URL}?status=PAUSED")) == [str(c["paused"].id)]
    assert ids(get(api, f"{URL}?status=TERMINATED")) == [str(c["terminated"].id)]
    res = get(api, f"{URL}?status=paused")
    assert res.json() == error(
        400, ["status must be one of the following values: ACTIVE, PAUSED, TERMINATED"]
    )
    # Like the original, the route has no query DTO: other parameters are ignored.
    assert len(get(api, f"{URL}?foo=bar").json()) == 3


def test_empty_list(cast: Cast) -> None:
    res = get(cast.api(cast.client.employee), URL)
    assert (res.status_code, res.json(), res["X-Total-Count"]) == (200, [], "0")


def test_paging(cast: Cast) -> None:
    c = make_contracts(cast)
    api = cast.api(cast.catering.manager)
    res = get(api, f"{URL}?page=2&limit=2")
    assert ids(res) == [str(c["terminated"].id)]
    assert res["X-Total-Count"] == "3"
    assert 'rel="prev"' in res["Link"]
    assert get(api, f"{URL}?limit=0").status_code == 400
    assert get(api, f"{URL}?limit=501").status_code == 400


def test_list_runs_a_fixed_number_of_queries(
    frozen_clock: datetime, cast: Cast, settings: Any
) -> None:
    settings.READ_CACHE_SECONDS = settings.AUTH_CACHE_SECONDS = 0  # the uncached path's queries
    api = cast.api(cast.catering.employee)

    def count_queries() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as ctx:
            res = get(api, f"{URL}?limit=500")
        assert res.status_code == 200
        return len(ctx.captured_queries), len(res.json())

    ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company
    )
    get(api, URL)  # the first request of a minute records session activity (one UPDATE)
    one, listed = count_queries()
    assert listed == 1
    for _ in range(99):
        ContractFactory.create(
            catering_company=cast.catering.company,
            client_company=cast.client.company,
            status=ContractStatus.TERMINATED,
        )
    hundred, listed = count_queries()
    assert listed == 100
    assert hundred == one
    assert one <= 5  # auth, count, page, weekdays (+ nothing per contract)


def test_detail_for_both_parties_and_every_role(cast: Cast, contract: Contract) -> None:
    for tenant in (cast.catering, cast.client):
        for user in (tenant.admin, tenant.manager, tenant.employee):
            res = get(cast.api(user), f"{URL}/{contract.id}")
            assert res.status_code == 200
            assert res.json()["id"] == str(contract.id)
            assert res.json()["serviceDays"] == [1, 3, 5]


def test_detail_for_a_non_party_is_403(cast: Cast, contract: Contract) -> None:
    for user in (cast.other_catering.admin, cast.other_client.employee):
        res = get(cast.api(user), f"{URL}/{contract.id}")
        assert res.json() == error(403, "Not authorized to view this contract")


def test_detail_unknown_and_malformed_ids(cast: Cast) -> None:
    api = cast.api(cast.client.admin)
    missing = uuid.uuid4()
    assert get(api, f"{URL}/{missing}").json() == error(404, f"Contract #{missing} not found")
    assert get(api, f"{URL}/not-a-uuid").json() == error(
        400, "Validation failed (uuid is expected)"
    )
    # Any 8-4-4-4-12 hex is accepted, as by Nest's ParseUUIDPipe (here: nil UUID, unknown).
    nil = "00000000-0000-0000-0000-000000000000"
    assert get(api, f"{URL}/{nil}").status_code == 404


def test_reads_require_a_token(cast: Cast, contract: Contract) -> None:
    for path in (URL, f"{URL}/{contract.id}"):
        res = get(cast.api(), path)
        assert (res.status_code, res.json()) == (
            401,
            {"message": "Unauthorized", "statusCode": 401},
        )


def test_finance_metrics_is_not_read_as_a_contract_id(cast: Cast) -> None:
    # Owned by servicedays, whose routes are included first; here only the precedence matters.
    res = get(cast.api(cast.client.manager), f"{URL}/finance-metrics")
    assert res.status_code == 200
    assert "budget" in res.json()


def test_list_rows_equal_the_contract_output_serializer(cast: Cast) -> None:
    """The list is built from one SQL statement; the detail (and create, transitions) from
    ContractOutput: both give the same object for the same contract."""
    from contracts.selectors import contract_for_output
    from contracts.serializers import ContractOutput

    made = make_contracts(cast)
    made["paused"].end_date = made["paused"].start_date + timedelta(days=30)
    made["paused"].save()
    listed = get(cast.api(cast.catering.employee), URL).json()
    expected = [
        ContractOutput(contract_for_output(contract_id=made[name].pk)).data
        for name in ("active", "paused", "terminated")
    ]
    from chefops.api.renderers import camelize

    assert listed == [camelize(dict(item)) for item in expected]
    assert listed[1]["endDate"] is not None


def test_paging_past_the_end_and_exact_pages(cast: Cast) -> None:
    make_contracts(cast)
    api = cast.api(cast.catering.manager)
    past = get(api, f"{URL}?page=5&limit=2")
    assert (past.json(), past["X-Total-Count"]) == ([], "3")
    full = get(api, f"{URL}?page=1&limit=3")
    assert (len(full.json()), full["X-Total-Count"]) == (3, "3")
    more = get(api, f"{URL}?page=1&limit=2")
    assert (len(more.json()), more["X-Total-Count"]) == (2, "3")
    assert 'rel="next"' in more["Link"]
