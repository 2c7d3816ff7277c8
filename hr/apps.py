from django.apps import AppConfig


class HrConfig(AppConfig):
    name = "hr"
    verbose_name = "Offboarding"

    def ready(self) -> None:
        from hr import checks  # noqa: F401  (registers the report guards' system check)
