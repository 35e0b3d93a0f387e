"""POST /api/contracts/:id/pause|resume|terminate (reference C5-C7 plus the fixes)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import time_machine

from chefops.testing.cast import Cast
from chefops.testing.factories import ContractFactory
from contracts.models import Contract, ContractStatus
from contracts.tests.helpers import ROLE_MESSAGE, error, post
from outbox.models import OutboxEvent

pytestmark = pytest.mark.django_db

ACTIVE, PAUSED, TERMINATED = ContractStatus.ACTIVE, ContractStatus.PAUSED, ContractStatus.TERMINATED
ACTIONS = ("pause", "resume", "terminate")
NOW = datetime(2026, 11, 28, 17, 30, 0, 5000, tzinfo=UTC)

STATE_TABLE = [
    ("pause", ACTIVE, 201, PAUSED),
    ("pause", PAUSED, 400, "Contract is already paused"),
    ("pause", TERMINATED, 400, "Cannot pause a terminated contract"),
    ("resume", ACTIVE, 400, "Contract is already active"),
    ("resume", PAUSED, 201, ACTIVE),
    ("resume", TERMINATED, 400, "Cannot resume a terminated contract"),
    ("terminate", ACTIVE, 201, TERMINATED),
    ("terminate", PAUSED, 201, TERMINATED),
    ("terminate", TERMINATED, 400, "Cannot terminate a terminated contract"),
]


def url(contract_id: object, action: str) -> str:
    return f"/api/contracts/{contract_id}/{action}"


def make(cast: Cast, status: str = ACTIVE) -> Contract:
    return ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company, status=status
    )


@pytest.mark.parametrize(("action", "start", "code", "outcome"), STATE_TABLE)
def test_state_table(cast: Cast, action: str, start: str, code: int, outcome: str) -> None:
    contract = make(cast, start)
    with time_machine.travel(NOW, tick=False):
        res = post(cast.api(cast.client.manager), url(contract.id, action))
    contract.refresh_from_db()
    assert res.status_code == code
    if code == 201:
        assert contract.status == outcome
        assert res.json()["status"] == outcome
        assert res.json()["id"] == str(contract.id)
        assert res.json()["updatedAt"] == "2026-11-28T17:30:00.005Z"
        assert res.json()["serviceDays"] == [1, 3, 5]
        assert OutboxEvent.objects.count() == 1
    else:
        assert res.json() == error(400, outcome)
        assert contract.status == start
        assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize(
    ("action", "start", "payload_extra"),
    [
        ("pause", ACTIVE, {"previousStatus": "ACTIVE", "newStatus": "PAUSED"}),
        ("resume", PAUSED, {"previousStatus": "PAUSED", "newStatus": "ACTIVE"}),
    ],
)
def test_pause_and_resume_events(
    cast: Cast, action: str, start: str, payload_extra: dict[str, str]
) -> None:
    contract = make(cast, start)
    with time_machine.travel(NOW, tick=False):
        post(cast.api(cast.client.admin), url(contract.id, action))
    event = OutboxEvent.objects.get()
    assert event.event_type == f"contract.{action}d"
    assert (event.aggregate_type, event.aggregate_id) == ("Contract", str(contract.id))
    assert event.payload == {
        "contractId": str(contract.id),
        **payload_extra,
        "changedAt": "2026-11-28T17:30:00.005Z",
    }
    assert event.metadata["actorUserId"] == str(cast.client.admin.id)
    assert event.metadata["actorCompanyId"] == str(cast.client.company.id)


@pytest.mark.parametrize("start", [ACTIVE, PAUSED])
def test_terminate_event(cast: Cast, start: str) -> None:
    contract = make(cast, start)
    with time_machine.travel(NOW, tick=False):
        post(cast.api(cast.client.manager), url(contract.id, "terminate"))
    event = OutboxEvent.objects.get()
    assert event.event_type == "contract.terminated"
    assert event.payload == {
        "contractId": str(contract.id),
        "cateringCompanyId": str(cast.catering.company.id),
        "clientCompanyId": str(cast.client.company.id),
        "terminatedAt": "2026-11-28T17:30:00.005Z",
    }


def test_resume_when_the_pair_already_has_an_active_contract_is_409(cast: Cast) -> None:
    paused = make(cast, PAUSED)
    make(cast, ACTIVE)
    res = post(cast.api(cast.client.manager), url(paused.id, "resume"))
    assert res.json() == error(
        409, 'An active contract already exists between "Delicias del Sur" and "TechCorp Argentina"'
    )
    paused.refresh_from_db()
    assert paused.status == PAUSED
    assert not OutboxEvent.objects.exists()


def test_resume_is_fine_when_the_other_contracts_are_not_active(cast: Cast) -> None:
    paused = make(cast, PAUSED)
    make(cast, TERMINATED)
    make(cast, PAUSED)
    assert post(cast.api(cast.client.manager), url(paused.id, "resume")).status_code == 201


def test_full_lifecycle(cast: Cast) -> None:
    contract = make(cast)
    api = cast.api(cast.client.manager)
    for action, code in [
        ("pause", 201),
        ("resume", 201),
        ("pause", 201),
        ("terminate", 201),
        ("terminate", 400),
        ("resume", 400),
    ]:
        assert post(api, url(contract.id, action)).status_code == code
    assert list(OutboxEvent.objects.values_list("event_type", flat=True)) == [
        "contract.paused",
        "contract.resumed",
        "contract.paused",
        "contract.terminated",
    ]


def test_body_is_ignored(cast: Cast) -> None:
    contract = make(cast)
    res = post(cast.api(cast.client.manager), url(contract.id, "pause"), {"reason": "holidays"})
    assert res.status_code == 201


# --- check order: CLIENT type -> uuid -> exists -> owner -> role -> state ------------------------


@pytest.mark.parametrize("action", ACTIONS)
def test_catering_callers_are_refused_before_the_id_is_validated(cast: Cast, action: str) -> None:
    contract = make(cast)
    for user in (cast.catering.admin, cast.other_catering.manager):
        for target in (contract.id, "not-a-uuid", uuid.uuid4()):
            res = post(cast.api(user), url(target, action))
            assert res.json() == error(403, "This action is restricted to CLIENT companies")
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize("action", ACTIONS)
def test_bad_id_then_unknown_id(cast: Cast, action: str) -> None:
    api = cast.api(cast.client.employee)  # the id checks come before the role check
    assert post(api, url("123", action)).json() == error(
        400, "Validation failed (uuid is expected)"
    )
    missing = uuid.uuid4()
    assert post(api, url(missing, action)).json() == error(404, f"Contract #{missing} not found")


@pytest.mark.parametrize("action", ACTIONS)
def test_only_the_contracts_client_may_act(cast: Cast, action: str) -> None:
    contract = make(cast, TERMINATED)  # the owner check comes before the state rule
    for user in (cast.other_client.admin, cast.other_client.employee):
        res = post(cast.api(user), url(contract.id, action))
        assert res.json() == error(403, f"Only the contract owner (client) can {action} it")


@pytest.mark.parametrize("action", ACTIONS)
def test_employees_of_the_client_cannot_change_contracts(cast: Cast, action: str) -> None:
    contract = make(cast, TERMINATED)  # the role check comes before the state rule
    res = post(cast.api(cast.client.employee), url(contract.id, action))
    assert res.json() == error(403, ROLE_MESSAGE)
    contract.status = PAUSED if action == "resume" else ACTIVE
    contract.save()
    res = post(cast.api(cast.client.employee), url(contract.id, action))
    assert res.json() == error(403, ROLE_MESSAGE)
    contract.refresh_from_db()
    assert contract.status in (ACTIVE, PAUSED)
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize("action", ACTIONS)
def test_transitions_require_a_token(cast: Cast, action: str) -> None:
    contract = make(cast)
    res = post(cast.api(), url(contract.id, action))
    assert (res.status_code, res.json()) == (401, {"message": "Unauthorized", "statusCode": 401})


def test_unknown_sub_route_and_wrong_method_are_404(cast: Cast) -> None:
    contract = make(cast)
    api = cast.api(cast.client.manager)
    res = post(api, url(contract.id, "archive"))
    assert res.status_code == 404
    res = api.get(url(contract.id, "pause"))
    assert res.json() == error(404, f"Cannot GET /api/contracts/{contract.id}/pause")
    res = api.delete(f"/api/contracts/{contract.id}")
    assert res.status_code == 404
