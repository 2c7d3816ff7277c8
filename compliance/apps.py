from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance archive"

    def ready(self) -> None:
        from compliance import checks  # noqa: F401  (registers the system check)
