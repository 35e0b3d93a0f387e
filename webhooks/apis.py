"""Webhook API: the endpoints of the caller's company (ADMIN only), their deliveries, the test
event and redelivery. Another company's endpoint or delivery is a 404."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chefops.api.fields import parse_path_uuid
from chefops.api.pagination import PagePagination
from chefops.api.permissions import IsCompanyAdmin
from chefops.api.schema import errors
from chefops.api.serializers import validated_body
from companies.models import Company, User
from webhooks import selectors, services
from webhooks.serializers import (
    WebhookCreateInput,
    WebhookDeliveryOutput,
    WebhookMessageOutput,
    WebhookOutput,
    WebhookUpdateInput,
    WebhookWithSecretOutput,
)

TAGS = ["webhooks"]
WEBHOOK_ID_PARAM = OpenApiParameter(
    "webhook_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Webhook endpoint id."
)
DELIVERY_ID_PARAM = OpenApiParameter(
    "delivery_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Delivery id."
)


def _company(request: Request) -> Company:
    user = request.user
    assert isinstance(user, User) and user.company is not None  # IsCompanyAdmin
    return user.company


class WebhookCollectionApi(APIView):
    permission_classes = [IsCompanyAdmin]

    @extend_schema(
        tags=TAGS, operation_id="webhooks_list", responses={200: WebhookOutput(many=True)}
    )
    def get(self, request: Request) -> Response:
        paginator = PagePagination()
        page = paginator.paginate_queryset(
            selectors.webhook_endpoint_list(company=_company(request)), request
        )
        return paginator.get_paginated_response(WebhookOutput(page, many=True).data)

    @extend_schema(
        tags=TAGS,
        operation_id="webhooks_create",
        description="Subscribes a URL of the caller's company to events. The answer carries "
        "the signing secret, shown only here and on rotation.",
        request=WebhookCreateInput,
        responses={201: WebhookWithSecretOutput, **errors(409)},
    )
    def post(self, request: Request) -> Response:
        data = validated_body(WebhookCreateInput, request)
        endpoint = services.webhook_endpoint_create(company=_company(request), **data)
        return Response(WebhookWithSecretOutput(endpoint).data, status=201)


class WebhookDetailApi(APIView):
    permission_classes = [IsCompanyAdmin]

    @extend_schema(
        tags=TAGS,
        operation_id="webhooks_retrieve",
        parameters=[WEBHOOK_ID_PARAM],
        responses={200: WebhookOutput},
    )
    def get(self, request: Request, webhook_id: str) -> Response:
        endpoint = selectors.webhook_endpoint_get(
            company=_company(request), endpoint_id=parse_path_uuid(webhook_id)
        )
        return Response(WebhookOutput(endpoint).data)

    @extend_schema(
        tags=TAGS,
        operation_id="webhooks_update",
        parameters=[WEBHOOK_ID_PARAM],
        request=WebhookUpdateInput,
        responses={200: WebhookOutput},
    )
    def patch(self, request: Request, webhook_id: str) -> Response:
        pk = parse_path_uuid(webhook_id)
        data = validated_body(WebhookUpdateInput, request)
        endpoint = services.webhook_endpoint_update(
            company=_company(request), endpoint_id=pk, data=data
        )
        return Response(WebhookOutput(endpoint).data)

    @extend_schema(
        tags=TAGS,
        operation_id="webhooks_destroy",
        parameters=[WEBHOOK_ID_PARAM],
        responses={200: WebhookMessageOutput},
    )
    def delete(self, request: Request, webhook_id: str) -> Response:
        services.webhook_endpoint_delete(
            company=_company(request), endpoint_id=parse_path_uuid(webhook_id)
        )
        return Response({"message": "Webhook endpoint deleted successfully"})


class WebhookRotateSecretApi(APIView):
    permission_classes = [IsCompanyAdmin]

    @extend_schema(
        tags=TAGS,
        operation_id="webhooks_rotate_secret",
        description="Replaces the signing secret, which the answer shows (only here). For 24 "
        "hours the old secret signs too (a second signature in webhook-signature).",
        parameters=[WEBHOOK_ID_PARAM],
        request=None,
        responses={200: WebhookWithSecretOutput},
    )
    def post(self, request: Request, webhook_id: str) -> Response:
        endpoint = services.webhook_endpoint_rotate_secret(
            company=_company(request), endpoint_id=parse_path_uuid(webhook_id)
        )
        return Response(WebhookWithSecretOutput(endpoint).data)


class WebhookDeliveryListApi(APIView):
    permission_classes = [IsCompanyAdmin]

    @extend_schema(
        tags=TAGS,
        operation_id="webhooks_deliveries_list",
        parameters=[WEBHOOK_ID_PARAM],
        responses={200: WebhookDeliveryOutput(many=True)},
    )
    def get(self, request: Request, webhook_id: str) -> Response:
        deliveries = selectors.webhook_delivery_list(
            company=_company(request), endpoint_id=parse_path_uuid(webhook_id)
        )
        paginator = PagePagination()
        page = paginator.paginate_queryset(deliveries, request)
        return paginator.get_paginated_response(WebhookDeliveryOutput(page, many=True).data)


class WebhookTestApi(APIView):
    permission_classes = [IsCompanyAdmin]

    @extend_schema(
        tags=TAGS,
        operation_id="webhooks_test",
        description="Sends a `webhook.test` event to this endpoint (asynchronously); the "
        "answer is the new delivery. 409 when the endpoint is not active.",
        parameters=[WEBHOOK_ID_PARAM],
        request=None,
        responses={202: WebhookDeliveryOutput, **errors(409)},
    )
    def post(self, request: Request, webhook_id: str) -> Response:
        delivery = services.webhook_test_send(
            company=_company(request), endpoint_id=parse_path_uuid(webhook_id)
        )
        delivery.refresh_from_db()
        return Response(WebhookDeliveryOutput(delivery).data, status=202)


class WebhookRedeliverApi(APIView):
    permission_classes = [IsCompanyAdmin]

    @extend_schema(
        tags=TAGS,
        operation_id="webhooks_redeliver",
        description="Sends a delivery again with a fresh retry schedule and the same "
        "webhook-id. 409 when the endpoint is not active.",
        parameters=[WEBHOOK_ID_PARAM, DELIVERY_ID_PARAM],
        request=None,
        responses={202: WebhookDeliveryOutput, **errors(409)},
    )
    def post(self, request: Request, webhook_id: str, delivery_id: str) -> Response:
        endpoint_pk = parse_path_uuid(webhook_id)
        delivery = services.webhook_delivery_redeliver(
            company=_company(request),
            delivery_id=parse_path_uuid(delivery_id),
            endpoint_id=endpoint_pk,
        )
        delivery.refresh_from_db()
        return Response(WebhookDeliveryOutput(delivery).data, status=202)
