"""Webhook routes (no trailing slash)."""

from django.urls import path

from webhooks import apis

urlpatterns = [
    path("webhooks", apis.WebhookCollectionApi.as_view(), name="webhooks"),
    path("webhooks/<str:webhook_id>", apis.WebhookDetailApi.as_view(), name="webhook-detail"),
    path(
        "webhooks/<str:webhook_id>/rotate-secret",
        apis.WebhookRotateSecretApi.as_view(),
        name="webhook-rotate-secret",
    ),
    path(
        "webhooks/<str:webhook_id>/deliveries",
        apis.WebhookDeliveryListApi.as_view(),
        name="webhook-deliveries",
    ),
    path("webhooks/<str:webhook_id>/test", apis.WebhookTestApi.as_view(), name="webhook-test"),
    path(
        "webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/redeliver",
        apis.WebhookRedeliverApi.as_view(),
        name="webhook-redeliver",
    ),
]
