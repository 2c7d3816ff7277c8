"""Helpers of the cases engineer's tests: auditors with a second factor, the
data protection officer, a client that sends an address and a browser, and
every route of the workspace."""

from collections.abc import Iterator
from dataclasses import dataclass
from uuid import uuid4

from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter, UUIDConverter
from django.urls.resolvers import RoutePattern

from accounts import roles
from accounts.models import User
from tests.factories import make_user

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) KontorAuditTest/1.0"
ADDRESS = "203.0.113.7"
TRAIL_ROUTES = {"audit_trail", "audit_trail_export"}


def with_totp(user: User) -> User:
    """Enrol a second factor, as the auditor's authenticator app would."""
    TOTP.activate(user, generate_totp_secret())
    return user


def make_auditor(email: str, name: str) -> User:
    return with_totp(make_user(email=email, display_name=name, roles=[roles.AUDITORS]))


def make_dpo() -> User:
    return with_totp(
        make_user(
            email="dana.dpo@kontor.example", display_name="Dana Datenschutz", roles=[roles.DATA_PROTECTION]
        )
    )


def client_for(user: User | None) -> Client:
    """A browser at a known address, signed in as ``user``."""
    client = Client(headers={"user-agent": BROWSER}, REMOTE_ADDR=ADDRESS)
    if user is not None:
        client.force_login(user)
    return client


@dataclass(frozen=True)
class Route:
    name: str  # with its namespace, e.g. "compliance:case"
    url: str
    arguments: tuple[str, ...]


def _walk(patterns: list[URLPattern | URLResolver], namespace: str) -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}:{entry.namespace}" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, inner)
        elif entry.name:
            yield namespace, entry


def _dummy(argument: str, pattern: URLPattern, ids: dict[str, int]) -> object:
    converter = (
        pattern.pattern.converters.get(argument) if isinstance(pattern.pattern, RoutePattern) else None
    )
    if isinstance(converter, UUIDConverter):
        return uuid4()
    if converter is None or isinstance(converter, IntConverter):
        # Real ids where the name says what they are: a view that forgot its
        # guard would then answer 200, not 404 for a missing object.
        for word, value in ids.items():
            if word in argument:
                return value
        return 1
    return "x"


def workspace_routes(ids: dict[str, int]) -> list[Route]:
    """Every named route of the "compliance" namespace, the other areas' too,
    resolved with ``ids`` (by argument name: "case" → ids["case"]) or dummies."""
    _prefix, resolver = get_resolver().namespace_dict["compliance"]
    routes = []
    for namespace, pattern in _walk(resolver.url_patterns, "compliance"):
        arguments = (
            list(pattern.pattern.converters)
            if isinstance(pattern.pattern, RoutePattern)
            else list(pattern.pattern.regex.groupindex)
        )
        name = f"{namespace}:{pattern.name}"
        kwargs = {argument: _dummy(argument, pattern, ids) for argument in arguments}
        routes.append(Route(name=name, url=reverse(name, kwargs=kwargs), arguments=tuple(arguments)))
    return routes
