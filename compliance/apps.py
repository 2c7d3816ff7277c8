from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance archive"

    def ready(self) -> None:
        # checks registers the system check; receivers audits accounts' role changes.
        from compliance import checks, receivers  # noqa: F401
