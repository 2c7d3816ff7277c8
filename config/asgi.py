"""ASGI entry point: HTTP through Django, websockets through Channels.

Websockets pass the origin check (config.origins: only the site's own scheme,
host and port; a foreign, ``null`` or missing Origin gets 403 at the handshake)
and session authentication before any consumer sees them. ``/healthz`` and
``/metrics`` skip the page middleware (config.operators).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Django must be set up before anything imports models (consumers do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.operators import OperatorEndpoints  # noqa: E402
from config.origins import SameOriginValidator  # noqa: E402
from messenger.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": OperatorEndpoints(django_asgi_app),
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
