from django.apps import AppConfig


class CompaniesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "companies"

    def ready(self) -> None:
        # System checks, outbox handlers and OpenAPI field mappings register on import.
        from companies import checks, handlers, schema  # noqa: F401
