from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance archive"

    def ready(self) -> None:
        # checks registers the system check; receivers audits accounts' role changes.
        from compliance import checks, receivers  # noqa: F401
        from compliance.policies import recording_notice

        # The workspace's Celery tasks (compliance.export, compliance.export_requeue):
        # Celery's autodiscovery imports only ``compliance.tasks``, and the core
        # does not import the workspace, so they are registered here, in every
        # process that runs Django (the worker included).
        from compliance.workspace import tasks  # noqa: F401
        from messenger import notices

        # The conversation page tells its participants (messenger cannot import compliance).
        notices.recording_notice_provide(recording_notice)
