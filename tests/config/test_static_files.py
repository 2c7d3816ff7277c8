"""Production's static files: the page script's modules import each other by
their hashed names, so a browser caches every module for a year and never mixes
a new one with an old one."""

import re
from pathlib import Path
from typing import Any

from django.core.management import call_command


def test_collected_modules_import_each_other_by_their_hashed_names(settings: Any, tmp_path: Path) -> None:
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "config.static_storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = False

    call_command("collectstatic", interactive=False, verbosity=0)

    [main] = [
        p
        for p in (tmp_path / "js" / "chat").glob("main.*.js")
        if re.fullmatch(r"main\.[0-9a-f]{12}\.js", p.name)
    ]
    imports = re.findall(r"""(?:from|import)\s*["'](\./[^"']+)["']""", main.read_text())
    assert len(imports) >= 5
    for name in imports:
        assert re.fullmatch(r"\./\w+\.[0-9a-f]{12}\.js", name), name
        assert (main.parent / name).is_file(), name
