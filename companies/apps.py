from django.apps import AppConfig


class CompaniesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "companies"

    def ready(self) -> None:
        # System checks, outbox handlers and OpenAPI field mappings register on import.
        # principals connects the principal cache's invalidation signals.
        from companies import checks, handlers, principals, schema  # noqa: F401
