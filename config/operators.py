"""``/healthz`` and ``/metrics`` served beside the pages, not through them.

A web process runs its sync code (every sync middleware and view) on one
thread, the same one the sockets' database calls wait on. WhiteNoise and the
time-zone middleware are sync-only, so through the page stack even an async
view would hold that thread while it waited, and a health probe waits up to
its timeout on an unreachable Redis or broker. These two endpoints need no
session, CSRF, static files or CSP: they go through a Django handler of their
own with only the security middleware (HTTPS redirect exemption, nosniff,
HSTS), so their async views never take the sync thread for longer than their
database reads.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.middleware.security import SecurityMiddleware

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

PATHS = frozenset({"/healthz", "/metrics"})


class OperatorHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        # The page middleware from settings is replaced by the security
        # middleware alone (BaseHandler keeps the chain in these attributes).
        super().load_middleware(is_async=True)
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        view = convert_exception_to_response(self._get_response_async)  # type: ignore[attr-defined]
        self._middleware_chain = convert_exception_to_response(SecurityMiddleware(view))


class OperatorEndpoints:
    """Send the operators' paths to ``OperatorHandler``, the rest to ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.operators = OperatorHandler()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in PATHS:
            await self.operators(scope, receive, send)
        else:
            await self.app(scope, receive, send)
