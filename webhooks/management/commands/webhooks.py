"""``manage.py webhooks list|redeliver <delivery id>|disable <endpoint id>|sweep``."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chefops.api.errors import DomainError
from webhooks import services
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_deliveries_sweep


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise CommandError(f"not an id: {value!r}") from exc


class Command(BaseCommand):
    help = "Operate webhooks: list endpoints, redeliver a delivery, disable an endpoint, sweep."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="Endpoints with their backlog and failures.")
        listing.add_argument("--company", help="Only this company's endpoints (id).")
        redeliver = sub.add_parser("redeliver", help="Send a delivery again (fresh schedule).")
        redeliver.add_argument("delivery_id")
        disable = sub.add_parser("disable", help="Switch an endpoint off.")
        disable.add_argument("endpoint_id")
        disable.add_argument(
            "--notify", action="store_true", help="E-mail the company's admins too."
        )
        sub.add_parser("sweep", help="Queue every due delivery now.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "list":
                self._list(options.get("company"))
            elif action == "redeliver":
                delivery = services.webhook_delivery_redeliver(
                    company=None, delivery_id=_uuid(options["delivery_id"])
                )
                self.stdout.write(f"webhooks: delivery {delivery.pk} queued again")
            elif action == "disable":
                endpoint = services.webhook_endpoint_disable(
                    company=None,
                    endpoint_id=_uuid(options["endpoint_id"]),
                    notify=options["notify"],
                )
                self.stdout.write(f"webhooks: endpoint {endpoint.pk} disabled")
            else:
                self.stdout.write(
                    f"webhooks: {webhook_deliveries_sweep()} due delivery(ies) queued"
                )
        except DomainError as exc:
            raise CommandError(str(exc)) from exc

    def _list(self, company: str | None) -> None:
        endpoints = WebhookEndpoint.objects.select_related("company").order_by("created_at")
        if company:
            endpoints = endpoints.filter(company_id=_uuid(company))
        count = 0
        for endpoint in endpoints:
            count += 1
            pending = WebhookDelivery.objects.filter(
                endpoint=endpoint, status=DeliveryStatus.PENDING
            ).count()
            failed = WebhookDelivery.objects.filter(
                endpoint=endpoint, status=DeliveryStatus.FAILED
            ).count()
            state = "active" if endpoint.is_active else "DISABLED"
            self.stdout.write(
                f"{endpoint.pk} {state} {endpoint.company.name!r} {endpoint.url} "
                f"pending={pending} failed={failed} "
                f"consecutive_failures={endpoint.consecutive_failures}"
            )
        self.stdout.write(f"webhooks: {count} endpoint(s)")
