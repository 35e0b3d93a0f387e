from django.apps import AppConfig


class ContractsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "contracts"

    def ready(self) -> None:
        # Registers the outbox handlers of contract events.
        from contracts import handlers  # noqa: F401
