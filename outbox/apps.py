from django.apps import AppConfig


class OutboxConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "outbox"

    def ready(self) -> None:
        # The audit handler registers itself on import.
        from outbox import handlers  # noqa: F401
