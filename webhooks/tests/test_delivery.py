"""Delivery end to end on PostgreSQL with real HTTP: a local receiver (http.server in a thread)
gets its company's events signed per Standard Webhooks and nothing of another company; retries
follow the schedule under a controlled clock; repeated failures disable the endpoint and
e-mail the admins; a hanging receiver does not hold up another; private targets are refused
at delivery."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test import TestCase
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from chefops.ops.metrics import generate_latest
from chefops.testing.cast import make_cast
from contracts.services import contract_create, contract_pause
from outbox.models import OutboxEvent
from outbox.services import outbox_dispatch
from webhooks import rules, services
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.tests.receiver import Receiver, running_receiver

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def local_targets(settings: Any) -> Any:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_ALLOW_HTTP = True
    return settings


def _endpoint(company: Any, receiver: Receiver, **options: Any) -> WebhookEndpoint:
    return services.webhook_endpoint_create(company=company, url=receiver.url, **options)


def _contract(manager: Any, catering: Any, client: Any) -> Any:
    return contract_create(
        actor=manager,
        catering_company_id=catering.pk,
        client_company_id=client.pk,
        price_per_service=Decimal("12.00"),
        min_daily_quantity=10,
        max_daily_quantity=50,
        notice_period_hours=24,
        service_days=[1, 2, 3, 4, 5],
    )


def _verify(endpoint: WebhookEndpoint, request: Any) -> dict[str, Any]:
    headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    verified: dict[str, Any] = Webhook(endpoint.secret).verify(request.body.decode(), headers)
    return verified


def _committed() -> Any:
    """Run what waits for the commit (the queueing of delivery tasks, which run inline in the
    tests: CELERY_TASK_ALWAYS_EAGER) as if the test's transaction had committed."""
    return TestCase.captureOnCommitCallbacks(execute=True)


def _deliver_due() -> None:
    """The outbox dispatcher's run: its handler queues a task per delivery on commit."""
    with _committed():
        outbox_dispatch()


def test_a_receiver_gets_its_companys_events_signed_and_nothing_else(
    local_targets: Any, cast: Any
) -> None:
    with (
        running_receiver() as mine,
        running_receiver() as clients,
        running_receiver() as outsiders,
    ):
        endpoint = _endpoint(cast.catering.company, mine)
        client_endpoint = _endpoint(cast.client.company, clients, event_types=["contract.paused"])
        outsider = _endpoint(cast.other_catering.company, outsiders)
        ours = _contract(cast.client.manager, cast.catering.company, cast.client.company)
        contract_pause(contract_id=ours.pk, actor=cast.client.manager)
        # A contract of two other companies: neither of ours hears of it.
        theirs = _contract(
            cast.other_client.manager, cast.other_catering.company, cast.other_client.company
        )
        _deliver_due()

        assert mine.wait_for(2)
        received = [_verify(endpoint, r) for r in mine.requests]
        assert [r["type"] for r in received] == ["contract.created", "contract.paused"]
        assert {r["data"]["contractId"] for r in received} == {str(ours.pk)}
        created = OutboxEvent.objects.get(event_type="contract.created", aggregate_id=ours.pk)
        assert received[0]["data"] == created.payload  # the outbox's camelCase payload
        assert received[0]["timestamp"].endswith("Z")
        # webhook-id is the delivery id; the signature verified with the endpoint's secret.
        delivery_ids = {r.headers["webhook-id"] for r in mine.requests}
        assert delivery_ids == {
            str(pk)
            for pk in WebhookDelivery.objects.filter(endpoint=endpoint).values_list("pk", flat=True)
        }
        assert all(r.headers["content-type"] == "application/json" for r in mine.requests)

        # The client subscribed to contract.paused only.
        assert clients.wait_for(1)
        assert [_verify(client_endpoint, r)["type"] for r in clients.requests] == [
            "contract.paused"
        ]
        # The other caterer gets its own contract's event, never ours.
        assert outsiders.wait_for(1)
        got = [_verify(outsider, r) for r in outsiders.requests]
        assert [(g["type"], g["data"]["contractId"]) for g in got] == [
            ("contract.created", str(theirs.pk))
        ]
    rows = WebhookDelivery.objects.filter(endpoint=endpoint)
    assert {r.status for r in rows} == {DeliveryStatus.SUCCEEDED}
    assert all(r.last_status_code == 200 and r.attempts == 1 for r in rows)
    assert all(r.last_latency_ms is not None and r.last_response_body == "ok" for r in rows)
    metrics = generate_latest().decode()
    assert 'chefops_webhook_deliveries_total{result="succeeded"}' in metrics
    assert "chefops_webhook_delivery_duration_seconds_bucket" in metrics
    assert "chefops_webhook_backlog_deliveries 0.0" in metrics


def test_fan_out_reaches_the_parties_of_service_day_and_company_events(
    local_targets: Any, cast: Any
) -> None:
    from django.db import transaction

    from outbox.services import outbox_event_emit
    from servicedays.models import ServiceDay

    with running_receiver() as caterer, running_receiver() as client, running_receiver() as other:
        _endpoint(cast.catering.company, caterer)
        _endpoint(cast.client.company, client)
        _endpoint(cast.other_client.company, other)
        contract = _contract(cast.client.manager, cast.catering.company, cast.client.company)
        day = ServiceDay.objects.create(contract=contract, service_date=timezone.now().date())
        with transaction.atomic():
            outbox_event_emit(
                event_type="servicedays.expected_confirmed",
                aggregate_type="ServiceDay",
                aggregate_id=day.pk,
                payload={"serviceDayId": str(day.pk), "expectedQuantity": 12},
            )
            outbox_event_emit(
                event_type="company.registered",
                aggregate_type="company",
                aggregate_id=cast.client.company.pk,
                payload={"companyId": str(cast.client.company.pk)},
            )
            # Not in the catalogue: nobody gets it.
            outbox_event_emit(
                event_type="user.invited",
                aggregate_type="user",
                aggregate_id=cast.client.admin.pk,
                payload={"tokenId": str(uuid.uuid4())},
            )
        _deliver_due()
        assert caterer.wait_for(2) and client.wait_for(3)
        types = lambda r: sorted(json.loads(x)["type"] for x in r.bodies())  # noqa: E731
        assert types(caterer) == ["contract.created", "servicedays.expected_confirmed"]
        assert types(client) == [
            "company.registered",
            "contract.created",
            "servicedays.expected_confirmed",
        ]
        assert other.requests == []


def test_failures_are_retried_on_the_schedule_with_a_stable_id(
    local_targets: Any, cast: Any
) -> None:
    t0 = timezone.now().replace(microsecond=0)
    with (
        running_receiver(status=503, answer=b"down") as receiver,
        time_machine.travel(t0, tick=False) as clock,
    ):
        endpoint = _endpoint(cast.catering.company, receiver)
        with _committed():
            delivery = services.webhook_test_send(company=None, endpoint_id=endpoint.pk)
        assert len(receiver.requests) == 1
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.PENDING
        assert delivery.attempts == 1
        assert delivery.last_status_code == 503
        assert delivery.last_error == "HTTP 503"
        assert delivery.last_response_body == "down"
        assert delivery.next_attempt_at is not None
        first_wait = delivery.next_attempt_at - t0
        assert timedelta(seconds=5) <= first_wait <= timedelta(seconds=5.5)

        # Not due yet: the sweep sends nothing.
        clock.move_to(t0 + timedelta(seconds=4))
        assert services.webhook_deliveries_sweep() == 0
        assert len(receiver.requests) == 1

        clock.move_to(delivery.next_attempt_at)
        services.webhook_deliveries_sweep()
        assert len(receiver.requests) == 2
        delivery.refresh_from_db()
        assert delivery.attempts == 2
        second_due = delivery.next_attempt_at
        assert second_due is not None
        assert timedelta(seconds=30) <= second_due - timezone.now() <= timedelta(seconds=33)

        receiver.status = 200
        clock.move_to(second_due)
        services.webhook_deliveries_sweep()
        assert len(receiver.requests) == 3
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.SUCCEEDED
        assert delivery.attempts == 3 and delivery.next_attempt_at is None

    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert ids == {str(delivery.pk)}
    stamps = [int(r.headers["webhook-timestamp"]) for r in receiver.requests]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3  # signed at each attempt


def _fail_until_given_up(delivery: WebhookDelivery, clock: Any) -> None:
    for _ in range(rules.MAX_ATTEMPTS):
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.PENDING
        clock.move_to(delivery.next_attempt_at)
        assert services.webhook_delivery_attempt(delivery_id=delivery.pk) in ("retry", "gave_up")
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == rules.MAX_ATTEMPTS


def test_repeated_failed_deliveries_disable_the_endpoint_and_mail_the_admins(
    local_targets: Any, cast: Any
) -> None:
    local_targets.WEBHOOK_MAX_FAILURES = 2
    t0 = timezone.now()
    with running_receiver(status=500) as receiver, time_machine.travel(t0, tick=False) as clock:
        endpoint = _endpoint(cast.catering.company, receiver)
        first = services.webhook_test_send(company=None, endpoint_id=endpoint.pk)
        _fail_until_given_up(first, clock)
        endpoint.refresh_from_db()
        assert endpoint.is_active and endpoint.consecutive_failures == 1
        second = services.webhook_test_send(company=None, endpoint_id=endpoint.pk)
        _fail_until_given_up(second, clock)
        assert len(receiver.requests) == 2 * rules.MAX_ATTEMPTS
        # The whole schedule spans about a day.
        assert timedelta(hours=20) < timezone.now() - t0 < timedelta(hours=50)
        endpoint.refresh_from_db()
        assert not endpoint.is_active
        assert endpoint.disabled_at is not None
        assert endpoint.consecutive_failures == 2
        assert mail.outbox == []  # the e-mail goes through the outbox
        outbox_dispatch()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [cast.catering.admin.email]  # ADMINs only, of this company only
    assert "disabled" in message.subject
    assert endpoint.url in message.body
    # A disabled endpoint gets no new deliveries and the sweep skips its old ones.
    third = WebhookDelivery.objects.create(
        endpoint=endpoint, event_id=uuid.uuid4(), event_type="contract.paused", body="{}"
    )
    assert services.webhook_deliveries_sweep() == 0
    assert services.webhook_delivery_attempt(delivery_id=third.pk) == "skipped"
    assert "chefops_webhook_endpoints_disabled 1.0" in generate_latest().decode()


def test_a_success_resets_the_failure_streak(local_targets: Any, cast: Any) -> None:
    with running_receiver() as receiver:
        endpoint = _endpoint(cast.catering.company, receiver)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=3)
        with _committed():
            services.webhook_test_send(company=None, endpoint_id=endpoint.pk)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0


@pytest.mark.django_db(transaction=True)
def test_a_hanging_receiver_does_not_delay_another(local_targets: Any) -> None:
    cast = make_cast()
    hold = threading.Event()
    with running_receiver(hold=hold) as hanging, running_receiver() as healthy:
        slow = WebhookDelivery.objects.create(
            endpoint=WebhookEndpoint.objects.create(
                company=cast.catering.company, url=hanging.url, secret=services.new_secret()
            ),
            event_id=uuid.uuid4(),
            event_type="contract.paused",
            body="{}",
        )
        fast = WebhookDelivery.objects.create(
            endpoint=WebhookEndpoint.objects.create(
                company=cast.client.company, url=healthy.url, secret=services.new_secret()
            ),
            event_id=uuid.uuid4(),
            event_type="contract.paused",
            body="{}",
        )
        outcomes: dict[str, str] = {}

        def attempt(name: str, pk: uuid.UUID) -> None:
            try:
                outcomes[name] = services.webhook_delivery_attempt(delivery_id=pk)
            finally:
                connection.close()

        # Two workers, as Celery runs them: one task per delivery.
        stuck = threading.Thread(target=attempt, args=("slow", slow.pk))
        stuck.start()
        assert hanging.wait_for(1)  # the slow receiver has the request and holds it
        attempt("fast", fast.pk)
        assert outcomes == {"fast": "succeeded"}  # while the other is still held
        assert stuck.is_alive()
        assert healthy.wait_for(1)
        hold.set()
        stuck.join(30)
        assert outcomes["slow"] == "succeeded"


def test_an_attempt_gives_up_on_a_receiver_after_the_timeout(local_targets: Any, cast: Any) -> None:
    local_targets.WEBHOOK_TIMEOUT_SECONDS = 0.3
    with running_receiver(hold=threading.Event()) as hanging:
        endpoint = _endpoint(cast.catering.company, hanging)
        delivery = services.webhook_test_send(company=None, endpoint_id=endpoint.pk)
        assert services.webhook_delivery_attempt(delivery_id=delivery.pk) == "retry"
    delivery.refresh_from_db()
    assert "timed out" in delivery.last_error
    assert delivery.last_status_code is None


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "localhost", "[::1]"])
def test_private_targets_are_refused_at_delivery(settings: Any, cast: Any, host: str) -> None:
    settings.WEBHOOK_ALLOW_HTTP = True
    with running_receiver() as receiver:
        port = receiver.server.server_address[1]
        url = f"http://{host}:{port}/hooks"
        # Written around the API (an endpoint from before the rule, or a name that now
        # resolves elsewhere): the delivery checks again after resolving.
        endpoint = WebhookEndpoint.objects.create(
            company=cast.catering.company, url=url, secret=services.new_secret()
        )
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint, event_id=uuid.uuid4(), event_type="contract.paused", body="{}"
        )
        assert services.webhook_delivery_attempt(delivery_id=delivery.pk) == "retry"
        assert receiver.requests == []
    delivery.refresh_from_db()
    assert delivery.last_error.startswith("refused: url host")
    assert "private, loopback, link-local or reserved" in delivery.last_error
    assert 'chefops_webhook_deliveries_total{result="refused"}' in generate_latest().decode()


def test_redirects_are_not_followed(local_targets: Any, cast: Any) -> None:
    with running_receiver() as target:
        with running_receiver(status=302, extra_headers={"Location": target.url}) as redirecting:
            endpoint = _endpoint(cast.catering.company, redirecting)
            delivery = services.webhook_test_send(company=None, endpoint_id=endpoint.pk)
            assert services.webhook_delivery_attempt(delivery_id=delivery.pk) == "retry"
            assert len(redirecting.requests) == 1
        assert target.requests == []
    delivery.refresh_from_db()
    assert delivery.last_status_code == 302
    assert "redirects are not followed" in delivery.last_error


def test_answers_are_stored_bounded_and_without_nul(local_targets: Any, cast: Any) -> None:
    answer = b"<script>alert(1)</script>\x00" + b"x" * 20_000
    with running_receiver(status=400, answer=answer) as receiver:
        endpoint = _endpoint(cast.catering.company, receiver)
        delivery = services.webhook_test_send(company=None, endpoint_id=endpoint.pk)
        services.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.last_response_body.startswith("<script>alert(1)</script>x")
    assert len(delivery.last_response_body) <= rules.RESPONSE_BODY_LIMIT


def test_a_claimed_delivery_is_not_sent_twice(local_targets: Any, cast: Any) -> None:
    with running_receiver() as receiver:
        endpoint = _endpoint(cast.catering.company, receiver)
        delivery = services.webhook_test_send(company=None, endpoint_id=endpoint.pk)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            locked_until=timezone.now() + timedelta(seconds=30)
        )
        assert services.webhook_delivery_attempt(delivery_id=delivery.pk) == "skipped"
        assert services.webhook_deliveries_sweep() == 0
        WebhookDelivery.objects.filter(pk=delivery.pk).update(locked_until=None)
        assert services.webhook_delivery_attempt(delivery_id=delivery.pk) == "succeeded"
        assert services.webhook_delivery_attempt(delivery_id=delivery.pk) == "skipped"
        assert len(receiver.requests) == 1
        assert services.webhook_delivery_attempt(delivery_id="not-a-uuid") == "skipped"


def test_redelivery_sends_the_same_id_again(local_targets: Any, cast: Any) -> None:
    with running_receiver() as receiver:
        endpoint = _endpoint(cast.catering.company, receiver)
        with _committed():
            delivery = services.webhook_test_send(company=None, endpoint_id=endpoint.pk)
        with _committed():
            services.webhook_delivery_redeliver(
                company=cast.catering.company, delivery_id=delivery.pk
            )
        assert receiver.wait_for(2)
        assert {r.headers["webhook-id"] for r in receiver.requests} == {str(delivery.pk)}
        assert receiver.requests[0].body == receiver.requests[1].body


def test_after_rotation_both_secrets_sign_for_a_day(local_targets: Any, cast: Any) -> None:
    t0 = timezone.now()
    with running_receiver() as receiver, time_machine.travel(t0, tick=False) as clock:
        endpoint = _endpoint(cast.catering.company, receiver)
        old_secret = endpoint.secret
        rotated = services.webhook_endpoint_rotate_secret(company=None, endpoint_id=endpoint.pk)
        with _committed():
            services.webhook_test_send(company=None, endpoint_id=endpoint.pk)
        first = receiver.requests[0]
        assert len(first.headers["webhook-signature"].split()) == 2
        assert _verify(rotated, first)["type"] == "webhook.test"
        old = WebhookEndpoint(secret=old_secret)
        assert _verify(old, first)["type"] == "webhook.test"  # a receiver not switched yet

        clock.move_to(t0 + timedelta(hours=24, seconds=1))
        with _committed():
            services.webhook_test_send(company=None, endpoint_id=endpoint.pk)
        second = receiver.requests[1]
        assert len(second.headers["webhook-signature"].split()) == 1
        assert _verify(rotated, second)["type"] == "webhook.test"
        with pytest.raises(WebhookVerificationError):
            _verify(old, second)


def test_the_sweep_requeues_only_retries_and_lost_tasks(local_targets: Any, cast: Any) -> None:
    t0 = timezone.now()
    with running_receiver() as receiver, time_machine.travel(t0, tick=False) as clock:
        endpoint = _endpoint(cast.catering.company, receiver)
        # Queued on commit, but the task never ran (no commit here: as if it was lost).
        delivery = services.webhook_test_send(company=None, endpoint_id=endpoint.pk)
        assert services.webhook_deliveries_sweep() == 0  # its task may still be on its way
        clock.move_to(t0 + services.REQUEUE_AFTER + timedelta(seconds=1))
        assert services.webhook_deliveries_sweep() == 1  # lost: queued (and sent) again
        assert receiver.wait_for(1)
        assert services.webhook_deliveries_sweep() == 0
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.enqueued_at is None
