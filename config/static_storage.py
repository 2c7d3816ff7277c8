"""Static files in production: compressed, with content hashes in their names
(cached for a year), and the page script's ES modules rewritten to import each
other by those hashed names. Without that, the modules' ``import "./util.js"``
would load the unhashed copies, which browsers may only cache briefly, and a
deploy could mix a new module with an old one still in a browser's cache.

Only Kontor's own modules (``js/chat/``) are rewritten: Django's switch for
this (``support_js_module_import_aggregation``) reads every script, and its
patterns trip over the third-party htmx extensions shipped by django-htmx.
"""

from django.contrib.staticfiles.storage import HashedFilesMixin
from whitenoise.storage import CompressedManifestStaticFilesStorage

# Django's import/export patterns for ES modules, applied to our modules only.
_MODULE_IMPORTS = HashedFilesMixin._js_module_import_aggregation_patterns[1]  # type: ignore[attr-defined]


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    patterns = (*CompressedManifestStaticFilesStorage.patterns, ("js/chat/*.js", _MODULE_IMPORTS))
