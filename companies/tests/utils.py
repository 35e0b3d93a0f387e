"""Helpers shared by the accounts API tests."""

from __future__ import annotations

import re
from typing import Any

from rest_framework.test import APIClient

from chefops.testing.factories import TEST_PASSWORD
from outbox.models import OutboxEvent
from outbox.registry import handlers_for

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MISSING_ID = "00000000-0000-4000-8000-000000000000"


def post(client: APIClient, path: str, body: Any = None, **extra: Any) -> Any:
    return client.post(path, {} if body is None else body, format="json", **extra)


def patch(client: APIClient, path: str, body: Any = None, **extra: Any) -> Any:
    return client.patch(path, {} if body is None else body, format="json", **extra)


def login(
    email: str, password: str = TEST_PASSWORD, client: APIClient | None = None, **body: Any
) -> Any:
    return post(
        client or APIClient(), "/api/auth/login", {"email": email, "password": password, **body}
    )


def bearer(access_token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token}")
    return client


def error(res: Any) -> tuple[int, Any]:
    body = res.json()
    assert set(body) == {"message", "error", "statusCode"}, body
    assert body["statusCode"] == res.status_code
    return res.status_code, body["message"]


def run_outbox_handlers(event_type: str | None = None) -> list[OutboxEvent]:
    """Deliver the events written so far by calling their registered handlers directly, as the
    dispatcher would (independent of the dispatcher's own machinery)."""
    events = list(OutboxEvent.objects.order_by("created_at"))
    if event_type:
        events = [e for e in events if e.event_type == event_type]
    for event in events:
        for handler in handlers_for(event.event_type):
            handler.func(event)
    return events
