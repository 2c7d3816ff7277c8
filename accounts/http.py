"""The request a signed-in person's view receives.

``login_required``, the workspace's ``auditor_required`` and the admin site
let only a signed-in ``User`` through, but Django types ``request.user`` as
``User | AnonymousUser``. Views behind those gates annotate their request as
``AuthenticatedHttpRequest`` instead of casting or ignoring the type at each
use (the same idea as Healthchecks' ``hc.accounts.http``). ``htmx`` is set
on every request by django-htmx's middleware (``config.settings``).
"""

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from accounts.models import User


class AuthenticatedHttpRequest(HttpRequest):
    user: User
    htmx: HtmxDetails
