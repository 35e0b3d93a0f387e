"""Input (strict) and output serializers of the webhook API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chefops.api import fields
from chefops.api.fields import ApiDateTimeField
from chefops.api.serializers import StrictSerializer
from webhooks import rules
from webhooks.models import DeliveryStatus

MAX_EVENT_TYPES = 50
DESCRIPTION_MAX_LENGTH = 500

Checks = list[tuple[str, Callable[[Any], bool], str]]


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "enum": list(rules.EVENT_TYPES)},
        "maxItems": MAX_EVENT_TYPES,
        "description": "Event types to receive; empty: every type.",
    }
)
class EventTypesField(fields.ApiField):
    """An array of event type names (the catalogue is checked by the service: 400)."""

    def checks(self) -> Checks:
        def each(pred: Callable[[Any], bool]) -> Callable[[Any], bool]:
            return lambda v: isinstance(v, list) and all(pred(x) for x in v)

        return [
            ("array", lambda v: isinstance(v, list), "{name} must be an array"),
            (
                "max_size",
                lambda v: not isinstance(v, list) or len(v) <= MAX_EVENT_TYPES,
                "{name} must contain no more than " + str(MAX_EVENT_TYPES) + " elements",
            ),
            ("type", each(lambda x: isinstance(x, str)), "each value in {name} must be a string"),
            (
                "known",
                each(lambda x: not isinstance(x, str) or x in rules.EVENT_TYPES),
                "each value in {name} must be one of the following values: "
                + ", ".join(rules.EVENT_TYPES),
            ),
        ]


class WebhookCreateInput(StrictSerializer):
    url = fields.StringField(max_length=rules.URL_MAX_LENGTH, not_empty=True)
    event_types = EventTypesField(required=False)
    description = fields.StringField(max_length=DESCRIPTION_MAX_LENGTH, required=False)
    is_active = fields.BooleanField(required=False)


class WebhookUpdateInput(StrictSerializer):
    url = fields.StringField(max_length=rules.URL_MAX_LENGTH, not_empty=True, required=False)
    event_types = EventTypesField(required=False)
    description = fields.StringField(max_length=DESCRIPTION_MAX_LENGTH, required=False)
    is_active = fields.BooleanField(required=False)


class WebhookOutput(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField(allow_blank=True)
    is_active = serializers.BooleanField()
    consecutive_failures = serializers.IntegerField(
        help_text="Deliveries given up in a row since the last successful attempt."
    )
    disabled_at = ApiDateTimeField(
        allow_null=True, help_text="When ChefOps disabled the endpoint for its failures."
    )
    created_at = ApiDateTimeField()
    updated_at = ApiDateTimeField()


class WebhookWithSecretOutput(WebhookOutput):
    secret = serializers.CharField(
        help_text="whsec_ + base64 of 24 random bytes: the Standard Webhooks signing key. "
        "Shown only when the endpoint is created and when the secret is rotated."
    )


class WebhookDeliveryOutput(serializers.Serializer):
    id = serializers.UUIDField(help_text="The webhook-id header (the same on every attempt).")
    webhook_id = serializers.UUIDField(source="endpoint_id")
    event_id = serializers.UUIDField()
    event_type = serializers.CharField()
    status = serializers.ChoiceField(choices=DeliveryStatus.values)
    attempts = serializers.IntegerField()
    next_attempt_at = ApiDateTimeField(allow_null=True)
    last_attempt_at = ApiDateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    last_latency_ms = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)
    last_response_body = serializers.CharField(
        allow_blank=True, help_text="The start of the last answer (at most 4 KiB)."
    )
    created_at = ApiDateTimeField()
    updated_at = ApiDateTimeField()


class WebhookMessageOutput(serializers.Serializer):
    message = serializers.CharField()
