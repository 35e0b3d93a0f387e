"""The webhook API: ADMIN of its own company only, camelCase, the error shape, paging, SSRF
refusal at subscription, hostile input."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import pytest
from django.test import override_settings

from webhooks import rules
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

# A public address literal: accepted without a DNS lookup (the tests run offline).
PUBLIC_URL = "https://93.184.215.14/hooks/chefops"


def _create(cast: Any, tenant: Any = None, **body: Any) -> Any:
    tenant = tenant or cast.catering
    return cast.api(tenant.admin).post("/api/webhooks", {"url": PUBLIC_URL, **body}, format="json")


def _assert_error(response: Any, status: int) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["statusCode"] == status
    assert "message" in body and "error" in body


def test_admin_creates_an_endpoint_and_sees_the_secret_once(cast: Any) -> None:
    response = _create(
        cast, eventTypes=["contract.paused", "contract.created"], description="Payroll"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {
        "id",
        "url",
        "eventTypes",
        "description",
        "isActive",
        "consecutiveFailures",
        "disabledAt",
        "createdAt",
        "updatedAt",
        "secret",
    }
    assert body["url"] == PUBLIC_URL
    assert body["eventTypes"] == ["contract.paused", "contract.created"]
    assert body["isActive"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["createdAt"])
    assert body["secret"].startswith("whsec_")
    assert len(base64.b64decode(body["secret"].removeprefix("whsec_"))) >= 24
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert endpoint.company == cast.catering.company

    detail = cast.api(cast.catering.admin).get(f"/api/webhooks/{body['id']}")
    assert detail.status_code == 200
    assert "secret" not in detail.json()
    listed = cast.api(cast.catering.admin).get("/api/webhooks")
    assert listed.status_code == 200
    assert listed["X-Total-Count"] == "1"
    assert [e["id"] for e in listed.json()] == [body["id"]]
    assert "secret" not in listed.json()[0]


def test_rotation_shows_a_new_secret(cast: Any) -> None:
    created = _create(cast).json()
    rotated = cast.api(cast.catering.admin).post(f"/api/webhooks/{created['id']}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != created["secret"]
    assert WebhookEndpoint.objects.get(pk=created["id"]).secret == rotated.json()["secret"]


def test_patch_and_delete(cast: Any) -> None:
    created = _create(cast).json()
    api = cast.api(cast.catering.admin)
    patched = api.patch(
        f"/api/webhooks/{created['id']}",
        {"isActive": False, "eventTypes": ["servicedays.served_confirmed"], "description": "x"},
        format="json",
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["isActive"] is False
    assert patched.json()["eventTypes"] == ["servicedays.served_confirmed"]
    assert patched.json()["description"] == "x"
    assert api.patch(f"/api/webhooks/{created['id']}", {}, format="json").status_code == 200
    deleted = api.delete(f"/api/webhooks/{created['id']}")
    assert deleted.status_code == 200
    assert deleted.json() == {"message": "Webhook endpoint deleted successfully"}
    _assert_error(api.get(f"/api/webhooks/{created['id']}"), 404)


def test_reenabling_clears_the_failure_streak(cast: Any) -> None:
    created = _create(cast).json()
    WebhookEndpoint.objects.filter(pk=created["id"]).update(
        is_active=False, consecutive_failures=5, disabled_at="2026-01-01T00:00:00Z"
    )
    body = (
        cast.api(cast.catering.admin)
        .patch(f"/api/webhooks/{created['id']}", {"isActive": True}, format="json")
        .json()
    )
    assert body["isActive"] is True
    assert body["consecutiveFailures"] == 0
    assert body["disabledAt"] is None


@pytest.mark.parametrize("role", ["manager", "employee"])
def test_other_roles_are_forbidden(cast: Any, role: str) -> None:
    created = _create(cast).json()
    api = cast.api(getattr(cast.catering, role))
    _assert_error(api.get("/api/webhooks"), 403)
    _assert_error(api.post("/api/webhooks", {"url": PUBLIC_URL}, format="json"), 403)
    _assert_error(api.get(f"/api/webhooks/{created['id']}"), 403)
    _assert_error(api.post(f"/api/webhooks/{created['id']}/rotate-secret"), 403)
    assert cast.api().get("/api/webhooks").status_code == 401


def test_it_validates_ownership(cast: Any) -> None:
    """Another company's endpoint and deliveries are 404s for every operation."""
    created = _create(cast).json()
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_id=uuid.uuid4(), event_type="contract.paused", body="{}"
    )
    outsider = cast.api(cast.other_catering.admin)
    base = f"/api/webhooks/{endpoint.pk}"
    _assert_error(outsider.get(base), 404)
    _assert_error(outsider.patch(base, {"description": "mine"}, format="json"), 404)
    _assert_error(outsider.delete(base), 404)
    _assert_error(outsider.post(f"{base}/rotate-secret"), 404)
    _assert_error(outsider.get(f"{base}/deliveries"), 404)
    _assert_error(outsider.post(f"{base}/test"), 404)
    _assert_error(outsider.post(f"{base}/deliveries/{delivery.pk}/redeliver"), 404)
    assert outsider.get("/api/webhooks").json() == []
    # Its own endpoint does not open another company's delivery either.
    own = _create(cast, cast.other_catering).json()
    _assert_error(
        outsider.post(f"/api/webhooks/{own['id']}/deliveries/{delivery.pk}/redeliver"), 404
    )
    endpoint.refresh_from_db()
    assert endpoint.description == "" and endpoint.secret == created["secret"]


def test_deliveries_are_listed_paged(cast: Any) -> None:
    created = _create(cast).json()
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    for _ in range(3):
        WebhookDelivery.objects.create(
            endpoint=endpoint, event_id=uuid.uuid4(), event_type="contract.paused", body="{}"
        )
    api = cast.api(cast.catering.admin)
    page = api.get(f"/api/webhooks/{endpoint.pk}/deliveries?limit=2&page=1")
    assert page.status_code == 200
    assert page["X-Total-Count"] == "3"
    assert len(page.json()) == 2
    assert 'rel="next"' in page["Link"]
    first = page.json()[0]
    assert first["webhookId"] == str(endpoint.pk)
    assert first["status"] == "PENDING" and first["attempts"] == 0
    _assert_error(api.get(f"/api/webhooks/{endpoint.pk}/deliveries?limit=0"), 400)


def test_test_event_and_redeliver_create_pending_deliveries(cast: Any) -> None:
    created = _create(cast).json()
    api = cast.api(cast.catering.admin)
    sent = api.post(f"/api/webhooks/{created['id']}/test")
    assert sent.status_code == 202, sent.content
    assert sent.json()["eventType"] == rules.TEST_EVENT_TYPE
    delivery = WebhookDelivery.objects.get(pk=sent.json()["id"])
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED, attempts=10)
    again = api.post(f"/api/webhooks/{created['id']}/deliveries/{delivery.pk}/redeliver")
    assert again.status_code == 202, again.content
    assert again.json()["status"] == "PENDING" and again.json()["attempts"] == 0
    api.patch(f"/api/webhooks/{created['id']}", {"isActive": False}, format="json")
    _assert_error(api.post(f"/api/webhooks/{created['id']}/test"), 409)
    _assert_error(
        api.post(f"/api/webhooks/{created['id']}/deliveries/{delivery.pk}/redeliver"), 409
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://localhost/hook",
    ],
)
def test_private_targets_are_refused_at_subscription(cast: Any, url: str) -> None:
    response = _create(cast, url=url)
    _assert_error(response, 400)
    assert "private, loopback, link-local or reserved" in str(response.json()["message"])
    assert not WebhookEndpoint.objects.exists()
    created = _create(cast).json()
    patched = cast.api(cast.catering.admin).patch(
        f"/api/webhooks/{created['id']}", {"url": url}, format="json"
    )
    _assert_error(patched, 400)


def test_private_targets_and_http_are_accepted_with_the_opt_ins(cast: Any) -> None:
    _assert_error(_create(cast, url="http://93.184.215.14/hook"), 400)
    with override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=True, WEBHOOK_ALLOW_HTTP=True):
        assert _create(cast, url="http://127.0.0.1:9/hook").status_code == 201
        assert _create(cast, url="http://localhost:9/hook").status_code == 201


def test_unresolvable_hosts_are_refused(cast: Any) -> None:
    response = _create(cast, url="https://no-such-host.invalid/hook")
    _assert_error(response, 400)
    assert "cannot be resolved" in str(response.json()["message"])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"eventTypes": ["contract.nope"]}, "eventTypes"),
        ({"eventTypes": "contract.paused"}, "eventTypes must be an array"),
        ({"eventTypes": [1]}, "must be a string"),
        ({"eventTypes": ["x"] * 51}, "no more than 50"),
        ({"url": ""}, "url should not be empty"),
        ({"url": None}, "url"),
        ({"url": 5}, "url must be a string"),
        ({"url": "https://93.184.215.14/\x00"}, "url must not contain NUL"),
        ({"url": "https://" + "a" * 5000}, "url must be shorter than or equal to 2000"),
        ({"description": "\x00"}, "description must not contain NUL"),
        ({"description": "d" * 501}, "description must be shorter"),
        ({"isActive": "yes"}, "isActive must be a boolean"),
        ({"secret": "whsec_mine"}, "property secret should not exist"),
    ],
)
def test_hostile_bodies_are_400(cast: Any, body: dict[str, Any], fragment: str) -> None:
    response = cast.api(cast.catering.admin).post(
        "/api/webhooks", {"url": PUBLIC_URL, **body}, format="json"
    )
    _assert_error(response, 400)
    assert fragment in str(response.json()["message"])
    assert not WebhookEndpoint.objects.exists()


def test_a_body_that_is_no_object_is_400(cast: Any) -> None:
    api = cast.api(cast.catering.admin)
    lone = b'{"url": "https://93.184.215.14/\\ud800"}'
    response = api.post("/api/webhooks", lone, content_type="application/json")
    _assert_error(response, 400)
    assert "surrogate" in str(response.json()["message"])
    _assert_error(api.post("/api/webhooks", [1, 2], format="json"), 400)
    _assert_error(api.post("/api/webhooks", b"\x00{", content_type="application/json"), 400)


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "1", "%00", "' OR 1=1 --", "x" * 300])
def test_bad_ids_are_400(cast: Any, bad_id: str) -> None:
    api = cast.api(cast.catering.admin)
    _assert_error(api.get(f"/api/webhooks/{bad_id}"), 400)
    _assert_error(api.post(f"/api/webhooks/{bad_id}/test"), 400)
    good = _create(cast).json()["id"]
    _assert_error(api.post(f"/api/webhooks/{good}/deliveries/{bad_id}/redeliver"), 400)


def test_the_endpoint_cap_is_a_409(cast: Any) -> None:
    for _ in range(20):
        assert _create(cast).status_code == 201
    _assert_error(_create(cast), 409)
    # Another company has its own cap.
    assert _create(cast, cast.client).status_code == 201
