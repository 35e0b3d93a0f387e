"""Admin for staff: webhook endpoints (created and changed through the services; the secret is
never shown in full) and their deliveries (read-only; response bodies escaped; redeliver)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from chefops.api.errors import DomainError
from chefops.service_admin import ServiceAdminMixin, copy_fields, refusal_text
from webhooks import rules, services
from webhooks.models import WebhookDelivery, WebhookEndpoint


def secret_hint(secret: str) -> str:
    """Enough to tell two secrets apart, never enough to sign with."""
    return f"{secret[:10]}…" if secret else ""


class WebhookEndpointForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in rules.EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None checked: every event type.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["company", "url", "event_types", "description", "is_active"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = [
        "url",
        "company",
        "is_active",
        "consecutive_failures",
        "disabled_at",
        "created_at",
    ]
    list_filter = ["is_active"]
    search_fields = ["url", "company__name"]
    list_select_related = ["company"]
    raw_id_fields = ["company"]
    readonly_fields = ["signing_secret", "consecutive_failures", "disabled_at", "created_at"]
    actions = ["send_test_event", "disable_endpoints"]

    @admin.display(description="secret")
    def signing_secret(self, obj: WebhookEndpoint) -> str:
        return secret_hint(obj.secret)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "company"] if obj is not None else fields

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        data = form.cleaned_data
        if not change:
            saved = services.webhook_endpoint_create(
                company=data["company"],
                url=data["url"],
                event_types=list(data.get("event_types") or []),
                description=data.get("description") or "",
                is_active=bool(data.get("is_active")),
            )
        else:
            changes = {
                name: (list(data[name]) if name == "event_types" else data[name])
                for name in ("url", "event_types", "description", "is_active")
                if name in form.changed_data
            }
            saved = services.webhook_endpoint_update(company=None, endpoint_id=obj.pk, data=changes)
        copy_fields(obj, saved)

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        services.webhook_endpoint_delete(company=None, endpoint_id=obj.pk)

    @admin.action(description="Send a test event to the selected endpoints")
    def send_test_event(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        sent, refused = 0, []
        for endpoint in queryset:
            try:
                services.webhook_test_send(company=None, endpoint_id=endpoint.pk)
                sent += 1
            except DomainError as exc:
                refused.append(f"{endpoint.url}: {refusal_text(exc)}")
        self.message_user(request, f"{sent} test event(s) queued.", messages.SUCCESS)
        if refused:
            self.message_user(request, "; ".join(refused), messages.WARNING)

    @admin.action(description="Disable the selected endpoints")
    def disable_endpoints(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        ids = list(queryset.filter(is_active=True).values_list("pk", flat=True))
        for pk in ids:
            services.webhook_endpoint_disable(company=None, endpoint_id=pk)
        self.message_user(request, f"{len(ids)} endpoint(s) disabled.", messages.SUCCESS)


DELIVERY_FIELDS: list[str] = [
    "id",
    "endpoint",
    "event_id",
    "event_type",
    "status",
    "attempts",
    "next_attempt_at",
    "last_attempt_at",
    "last_status_code",
    "last_latency_ms",
    "last_error",
    "response_body",
    "request_body",
    "created_at",
    "updated_at",
]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_latency_ms",
        "next_attempt_at",
    ]
    list_filter = ["status", "event_type"]
    list_select_related = ["endpoint"]
    search_fields = ["=id", "=event_id"]
    search_help_text = "Delivery id or event id (exact)"
    ordering = ["-created_at"]
    show_full_result_count = False
    list_per_page = 100
    actions = ["redeliver"]
    fields = tuple(DELIVERY_FIELDS)
    readonly_fields = DELIVERY_FIELDS

    @admin.display(description="last response body (first 4 KiB)")
    def response_body(self, obj: WebhookDelivery) -> str:
        # Whatever the receiver answered is shown as text, escaped: never as HTML.
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.last_response_body)

    @admin.display(description="body sent")
    def request_body(self, obj: WebhookDelivery) -> str:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.body)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the retention purge removes deliveries after 30 days

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webhooks.change_webhookendpoint")

    @admin.action(description="Redeliver the selected deliveries", permissions=["redeliver"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        done, refused = 0, 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                services.webhook_delivery_redeliver(company=None, delivery_id=pk)
                done += 1
            except DomainError:
                refused += 1
        self.message_user(
            request,
            f"{done} delivery(ies) queued again; {refused} skipped (endpoint not active).",
            messages.SUCCESS if done else messages.WARNING,
        )
