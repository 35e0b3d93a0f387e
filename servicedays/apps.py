from django.apps import AppConfig


class ServiceDaysConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "servicedays"

    def ready(self) -> None:
        from servicedays import signals  # noqa: F401 - connects the read-cache invalidation
