"""contracts.handlers: the other party's ADMIN and MANAGER users get an e-mail per event."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives

from chefops.testing.cast import Cast
from chefops.testing.factories import UserFactory
from companies.models import Role, User
from contracts import services
from contracts.handlers import NOTIFY_HANDLER, contract_notify_other_party
from contracts.models import Contract, ContractStatus
from contracts.tests.helpers import create_body, post
from outbox.models import OutboxEvent
from outbox.registry import handlers_for

pytestmark = pytest.mark.django_db


def recipients() -> list[str]:
    return sorted(address for message in mail.outbox for address in message.to)


def test_the_handler_is_registered_for_the_four_events_as_external() -> None:
    for event_type in services.EVENT_TYPES:
        handler = next(h for h in handlers_for(event_type) if h.name == NOTIFY_HANDLER)
        assert handler.external is True
        assert handler.func is contract_notify_other_party


def test_created_by_the_client_notifies_the_caterer(cast: Cast) -> None:
    UserFactory.create(company=cast.catering.company, role=Role.MANAGER, is_active=False)
    res = post(
        cast.api(cast.client.manager), "/api/contracts", create_body(cast, serviceDays=[5, 1])
    )
    assert res.status_code == 201
    event = OutboxEvent.objects.get(event_type="contract.created")
    assert mail.outbox == []  # nothing is sent in the request: the outbox delivers it

    contract_notify_other_party(event)

    assert recipients() == sorted([cast.catering.admin.email, cast.catering.manager.email])
    message = mail.outbox[0]
    assert isinstance(message, EmailMultiAlternatives)
    assert message.subject == "New contract between Delicias del Sur and TechCorp Argentina"
    assert "TechCorp Argentina created a contract" in message.body
    assert "Service days: Friday, Monday" in message.body
    assert "Price per service: 15.5" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert "<strong>Delicias del Sur</strong>" in str(html)
    assert str(event.id) in message.extra_headers["Message-ID"]


def test_created_by_the_caterer_notifies_the_client(cast: Cast) -> None:
    post(cast.api(cast.catering.admin), "/api/contracts", create_body(cast))
    contract_notify_other_party(OutboxEvent.objects.get())
    assert recipients() == sorted([cast.client.admin.email, cast.client.manager.email])


@pytest.mark.parametrize(
    ("action", "start", "subject_verb"),
    [
        ("pause", ContractStatus.ACTIVE, "paused"),
        ("resume", ContractStatus.PAUSED, "resumed"),
        ("terminate", ContractStatus.ACTIVE, "terminated"),
    ],
)
def test_transitions_notify_the_caterer(
    cast: Cast, contract: Contract, action: str, start: str, subject_verb: str
) -> None:
    contract.status = start
    contract.save()
    res = post(cast.api(cast.client.manager), f"/api/contracts/{contract.id}/{action}")
    assert res.status_code == 201
    contract_notify_other_party(OutboxEvent.objects.get())
    assert recipients() == sorted([cast.catering.admin.email, cast.catering.manager.email])
    assert mail.outbox[0].subject == (
        f"Contract between Delicias del Sur and TechCorp Argentina {subject_verb}"
    )
    assert f"TechCorp Argentina {subject_verb} the contract" in mail.outbox[0].body
    assert cast.catering.employee.email not in recipients()
    assert not any(
        email.endswith(("startup@example.com", "sabores@example.com")) for email in recipients()
    )


def test_staff_actions_notify_both_parties(cast: Cast, contract: Contract) -> None:
    staff = User.objects.create_superuser("ops@chefops.local", "pw-for-tests-only")
    services.contract_pause(contract_id=contract.id, actor=staff)
    contract_notify_other_party(OutboxEvent.objects.get())
    assert recipients() == sorted(
        [
            cast.catering.admin.email,
            cast.catering.manager.email,
            cast.client.admin.email,
            cast.client.manager.email,
        ]
    )
    assert "A ChefOps administrator paused the contract" in mail.outbox[0].body


def test_the_handler_is_deterministic(cast: Cast, contract: Contract) -> None:
    services.contract_terminate(contract_id=contract.id, actor=cast.client.admin)
    event = OutboxEvent.objects.get()
    contract_notify_other_party(event)
    first = [(m.to, m.subject, m.body, m.extra_headers["Message-ID"]) for m in mail.outbox]
    mail.outbox.clear()
    contract_notify_other_party(event)
    second = [(m.to, m.subject, m.body, m.extra_headers["Message-ID"]) for m in mail.outbox]
    assert first == second
    assert len(first) == 2


def test_nobody_to_tell_sends_nothing(cast: Cast, contract: Contract) -> None:
    services.contract_pause(contract_id=contract.id, actor=cast.client.admin)
    event = OutboxEvent.objects.get()
    User.objects.filter(company=cast.catering.company).update(is_active=False)
    contract_notify_other_party(event)
    assert mail.outbox == []


def test_a_vanished_contract_is_skipped(cast: Cast) -> None:
    event = OutboxEvent.objects.create(
        event_type="contract.paused",
        aggregate_type="Contract",
        aggregate_id="5f0c6c1e-3a9b-4bde-9f5e-0d2b9e7c1a11",
        payload={},
    )
    contract_notify_other_party(event)
    event.aggregate_id = "not-a-uuid"
    contract_notify_other_party(event)
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_the_outbox_delivers_the_notification_once(cast: Cast, contract: Contract) -> None:
    """End to end: the commit nudges the dispatcher (eager in tests), which runs the handler
    and records it in the ledger, so a second dispatch sends nothing more."""
    from outbox.models import ProcessedEvent
    from outbox.services import outbox_dispatch

    res = post(cast.api(cast.client.manager), f"/api/contracts/{contract.id}/pause")
    assert res.status_code == 201
    event = OutboxEvent.objects.get()
    assert recipients() == sorted([cast.catering.admin.email, cast.catering.manager.email])
    assert ProcessedEvent.objects.filter(event_id=event.id, handler_name=NOTIFY_HANDLER).exists()
    outbox_dispatch()
    assert len(mail.outbox) == 2
