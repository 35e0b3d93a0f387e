from django.apps import AppConfig


class ServiceDaysConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "servicedays"
