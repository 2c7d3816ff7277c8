from django.apps import AppConfig


class ArchiveConfig(AppConfig):
    name = "archive"
    verbose_name = "Company file archive"

    def ready(self) -> None:
        from archive.uploads import allow_long_file_names

        allow_long_file_names()
