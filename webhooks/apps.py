from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks"

    def ready(self) -> None:
        # Registers the outbox handlers: events -> deliveries, and the "endpoint disabled" mail.
        from webhooks import handlers  # noqa: F401
