from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance archive"

    def ready(self) -> None:
        # checks registers the system check; receivers audits accounts' role changes.
        from compliance import checks, receivers  # noqa: F401
        from compliance.policies import recording_notice
        from messenger import notices

        # The conversation page tells its participants (messenger cannot import compliance).
        notices.recording_notice_provide(recording_notice)
