"""Outbox handlers of contract events: tell the other party what happened, by e-mail."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from chefops.api.permissions import MANAGERS
from companies.models import Company, User
from contracts.models import Contract
from contracts.services import (
    EVENT_CREATED,
    EVENT_PAUSED,
    EVENT_RESUMED,
    EVENT_TERMINATED,
)
from outbox.email import send_templated_email
from outbox.models import OutboxEvent
from outbox.registry import outbox_handler

logger = logging.getLogger(__name__)

NOTIFY_HANDLER = "contracts.notify_other_party"

TEMPLATES = {
    EVENT_CREATED: "contract_created",
    EVENT_PAUSED: "contract_paused",
    EVENT_RESUMED: "contract_resumed",
    EVENT_TERMINATED: "contract_terminated",
}
WEEKDAY_NAMES = {
    1: "Monday",
    2: "Tuesday",
    3: "Wednesday",
    4: "Thursday",
    5: "Friday",
    6: "Saturday",
    7: "Sunday",
}


def notified_companies(contract: Contract, actor_company_id: str | None) -> list[Company]:
    """The party that did not act; both parties when staff or the system acted."""
    parties = [contract.catering_company, contract.client_company]
    return [company for company in parties if str(company.pk) != actor_company_id]


def notification_recipients(companies: list[Company]) -> list[str]:
    return list(
        User.objects.filter(company__in=companies, is_active=True, role__in=MANAGERS)
        .order_by("email")
        .values_list("email", flat=True)
    )


def _email_context(event: OutboxEvent, contract: Contract) -> dict[str, Any]:
    payload = event.payload
    actor_company_id = event.metadata.get("actorCompanyId")
    acting = next(
        (
            company
            for company in (contract.catering_company, contract.client_company)
            if str(company.pk) == actor_company_id
        ),
        None,
    )
    service_days = payload.get("serviceDays") or []
    return {
        "contract_id": str(contract.pk),
        "short_id": str(contract.pk)[:8],
        "catering_name": contract.catering_company.name,
        "client_name": contract.client_company.name,
        "actor_name": acting.name if acting is not None else "A ChefOps administrator",
        "start_date": (payload.get("startDate") or "")[:10],
        "end_date": (payload.get("endDate") or "")[:10] or None,
        "price_per_service": payload.get("pricePerService"),
        "min_daily_quantity": payload.get("minDailyQuantity"),
        "max_daily_quantity": payload.get("maxDailyQuantity"),
        "service_day_names": [WEEKDAY_NAMES.get(day, str(day)) for day in service_days],
        "previous_status": payload.get("previousStatus"),
        "new_status": payload.get("newStatus"),
    }


@outbox_handler(
    EVENT_CREATED,
    EVENT_PAUSED,
    EVENT_RESUMED,
    EVENT_TERMINATED,
    name=NOTIFY_HANDLER,
    external=True,
)
def contract_notify_other_party(event: OutboxEvent) -> None:
    """E-mail the active ADMIN and MANAGER users of the party that did not act.

    Everything in the message comes from the event and the contract's parties, so a
    re-delivery renders the same mail with the same Message-ID (derived from the event id).
    """
    try:
        contract_id = uuid.UUID(event.aggregate_id)
    except ValueError:
        logger.warning("Contract event %s has a malformed aggregate id", event.id)
        return
    contract = (
        Contract.objects.select_related("catering_company", "client_company")
        .filter(pk=contract_id)
        .first()
    )
    if contract is None:
        # Purged with its company (retention): nobody is left to tell.
        logger.info("Contract %s of event %s no longer exists", contract_id, event.id)
        return
    companies = notified_companies(contract, event.metadata.get("actorCompanyId"))
    recipients = notification_recipients(companies)
    if not recipients:
        return
    send_templated_email(
        template=TEMPLATES[event.event_type],
        to=recipients,
        context=_email_context(event, contract),
        event_id=event.id,
        handler=NOTIFY_HANDLER,
    )
