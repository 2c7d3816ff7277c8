"""The websocket origin check: only the site's own pages may open ``/ws/``.

A browser sends the page's origin (scheme, host and port) with every websocket
handshake, and the socket carries the signed-in user's stream, so the check must
compare all three. Channels' ``AllowedHostsOriginValidator`` compares the host
only: a page of any other web application on the same host name (another port,
or plain http next to https) could read the stream.

An ``Origin`` is accepted when it is

- exactly the scheme, host and port the handshake was made to: the ``Host``
  header (which must be one of ``ALLOWED_HOSTS``, as for every page) and the
  connection's scheme, taken from ``SECURE_PROXY_SSL_HEADER`` only when Django is
  configured to trust that header (``KONTOR_BEHIND_PROXY``); this is what makes a
  server on any port work (development, tests, one daphne per port behind a
  proxy that passes ``Host`` through); or
- one of the site's configured origins: ``KONTOR_BASE_URL``'s and the entries of
  ``CSRF_TRUSTED_ORIGINS`` (with Django's ``https://*.example.com`` wildcards),
  the same origins a page's form posts are trusted from.

Anything else (another port, another scheme, another host, ``null``, no Origin
at all, or a ``Host`` outside ``ALLOWED_HOSTS``) is answered with HTTP 403 at the
handshake, the way Channels' own validators deny.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

Scope = dict[str, Any]

DEFAULT_PORTS = {"http": "80", "https": "443"}


def _origin(scheme: str, netloc: str) -> str | None:
    """``scheme://host:port`` with the port always spelled out, or None if not a web origin."""
    scheme = scheme.lower()
    if scheme not in DEFAULT_PORTS:
        return None
    host, port = split_domain_port(netloc)
    if not host or (port and not port.isdigit()):
        return None
    return f"{scheme}://{host}:{int(port or DEFAULT_PORTS[scheme])}"


def parse_origin(value: str) -> str | None:
    """A browser's ``Origin`` header normalised, or None (``null``, a path, credentials…)."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    return _origin(parts.scheme, parts.netloc)


def _allowed_hosts() -> list[str]:
    # As HttpRequest.get_host() does.
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return allowed


def _header(scope: Scope, name: bytes) -> str | None:
    for header_name, header_value in scope.get("headers", []):
        if header_name.lower() == name:
            try:
                return str(header_value.decode("latin1"))
            except UnicodeDecodeError:  # pragma: no cover - latin1 decodes every byte
                return None
    return None


def request_scheme(scope: Scope) -> str:
    """``http`` or ``https``, as ``HttpRequest.scheme`` would say for this handshake."""
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        meta_name, secure_value = proxy_header
        # "HTTP_X_FORWARDED_PROTO" is the header "x-forwarded-proto".
        name = meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin1")
        value = _header(scope, name)
        if value is not None:
            return "https" if value.split(",", 1)[0].strip() == secure_value else "http"
    return "https" if scope.get("scheme", "ws") in ("wss", "https") else "http"


def request_origin(scope: Scope) -> str | None:
    """The origin the handshake was made to, or None when its Host is not allowed."""
    host = _header(scope, b"host")
    if not host:
        return None
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return None
    return _origin(request_scheme(scope), host)


def configured_origins() -> tuple[frozenset[str], tuple[tuple[str, str], ...]]:
    """The site's own origins: exact ones, and ``(scheme, .domain)`` wildcards."""
    exact: set[str] = set()
    wildcards: list[tuple[str, str]] = []
    for url in (settings.KONTOR_BASE_URL, *settings.CSRF_TRUSTED_ORIGINS):
        parts = urlsplit(url)
        if parts.netloc.startswith("*"):
            wildcards.append((parts.scheme.lower(), parts.netloc[1:].lower()))
        elif (origin := _origin(parts.scheme, parts.netloc)) is not None:
            exact.add(origin)
    return frozenset(exact), tuple(wildcards)


def origin_allowed(scope: Scope) -> bool:
    value = _header(scope, b"origin")
    if value is None or (origin := parse_origin(value)) is None:
        return False
    own = request_origin(scope)
    if own is None:  # a Host outside ALLOWED_HOSTS: Django would answer 400
        return False
    if origin == own:
        return True
    exact, wildcards = configured_origins()
    if origin in exact:
        return True
    parts = urlsplit(value.strip())
    return any(
        parts.scheme.lower() == scheme and is_same_domain(parts.netloc.lower(), pattern)
        for scheme, pattern in wildcards
    )


class SameOriginValidator:
    """ASGI middleware for websockets: the site's own origins pass, others get 403."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("SameOriginValidator guards websocket connections only.")
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        # Close before accepting: the server answers the handshake with 403.
        return await WebsocketDenier()(scope, receive, send)
