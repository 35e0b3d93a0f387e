from django.apps import AppConfig


class ChefOpsConfig(AppConfig):
    name = "chefops"

    def ready(self) -> None:
        from chefops import checks  # noqa: F401 - registers the system checks
