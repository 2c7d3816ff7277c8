"""Every page comes from Kontor's own server, under a strict Content-Security-Policy."""

import json
from html.parser import HTMLParser
from io import BytesIO
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client
from PIL import Image
from pytest_django import DjangoAssertNumQueries

from accounts import roles
from accounts.models import User
from tests.factories import DepartmentFactory, make_user

pytestmark = pytest.mark.django_db

OWN_HOSTS = {"testserver", "localhost"}
# On the foundation the home page needs four: the session, the user, "has this
# person set up 2FA?" (the reminder) and the person's roles (the navigation).
# Whatever is added, the count must not grow with colleagues, roles or departments.
HOME_MAX_QUERIES = 8


class _Links(HTMLParser):
    """Collects every src/href/action, inline scripts and style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.style_attributes = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href", "action", "poster", "data"):
            value = values.get(name)
            if value is not None:
                self.urls.append(value.strip())
        if "style" in values:
            self.style_attributes += 1
        if tag == "script" and not values.get("src") and values.get("type") != "application/json":
            self._in_script = True

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


def _links(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


def _client_for(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def pages(alice: User, hr_user: User) -> list[tuple[str, Client]]:
    anonymous, alice_client, hr_client = _client_for(None), _client_for(alice), _client_for(hr_user)
    return [
        ("/accounts/login/", anonymous),
        ("/accounts/password/reset/", anonymous),
        ("/", alice_client),
        ("/profile/", alice_client),
        ("/accounts/2fa/", alice_client),
        ("/admin/", hr_client),
        ("/admin/accounts/user/", hr_client),
    ]


@pytest.mark.parametrize("path", ["/accounts/login/", "/", "/profile/", "/accounts/2fa/"])
def test_pages_send_a_strict_content_security_policy(client: Client, alice: User, path: str) -> None:
    if path != "/accounts/login/":
        client.force_login(alice)

    response = client.get(path)

    assert response.status_code == 200
    policy = {
        directive.split()[0]: directive.split()[1:]
        for directive in response["Content-Security-Policy"].split(";")
        if directive.strip()
    }
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"


def test_no_page_loads_anything_from_another_host(pages: list[tuple[str, Client]]) -> None:
    for path, client in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        for url in _links(response.content.decode()).urls:
            parts = urlsplit(url)
            if url.startswith(("http://", "https://", "//")):
                assert parts.hostname in OWN_HOSTS, f"{path} refers to {url}"
            else:
                assert parts.scheme in ("", "data", "mailto"), f"{path} refers to {url}"


def test_static_files_referenced_by_pages_exist(pages: list[tuple[str, Client]]) -> None:
    checked = 0
    for path, client in pages:
        for url in _links(client.get(path).content.decode()).urls:
            url_path = urlsplit(url).path
            if url_path.startswith(settings.STATIC_URL):
                name = url_path.removeprefix(settings.STATIC_URL)
                assert finders.find(name) is not None, f"{path} refers to missing {url}"
                checked += 1
    assert checked >= 10


def test_kontor_pages_have_no_inline_script_or_style(pages: list[tuple[str, Client]]) -> None:
    # The policy forbids both: a browser would silently drop them.
    for path, client in pages:
        found = _links(client.get(path).content.decode())
        assert found.inline_scripts == 0, path
        assert found.style_attributes == 0, path


def test_home_page_query_count_is_constant(
    client: Client,
    alice: User,
    django_assert_max_num_queries: DjangoAssertNumQueries,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    client.force_login(alice)
    client.get("/")  # a first request may refresh the session

    with django_assert_max_num_queries(HOME_MAX_QUERIES) as sparse:
        assert client.get("/").status_code == 200
    queries = len(sparse)  # now: the next request resets the connection's query log

    busy = make_user(
        email="busy@kontor.example",
        department=DepartmentFactory(name="Sales"),
        roles=[roles.HR, roles.AUDITORS],
    )
    for n in range(10):
        make_user(email=f"colleague{n}@kontor.example", department=busy.department)
    client.force_login(busy)
    client.get("/")

    with django_assert_num_queries(queries):
        page = client.get("/")
    assert "People admin" in page.content.decode()
    assert 'href="/compliance/"' in page.content.decode()  # auditors find their workspace


def test_only_auditors_see_the_compliance_archive_in_the_navigation(client: Client) -> None:
    otto = make_user(email="otto@kontor.example", roles=[roles.AUDITORS])
    anna = make_user(email="anna@kontor.example")

    client.force_login(otto)
    assert "Compliance archive" in client.get("/").content.decode()
    client.force_login(anna)
    page = client.get("/").content.decode()
    assert "Compliance archive" not in page and 'href="/compliance/"' not in page


# --- Installable app: manifest, icons, colour scheme --------------------------


class _Head(HTMLParser):
    """Collects the <link> and <meta> tags of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []
        self.metas: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "link":
            self.links.append(dict(attrs))
        elif tag == "meta":
            self.metas.append(dict(attrs))


def _head(html: str) -> _Head:
    parser = _Head()
    parser.feed(html)
    return parser


def _manifest(client: Client) -> dict[str, Any]:
    response = client.get(f"{settings.STATIC_URL}manifest.webmanifest")
    assert response.status_code == 200
    manifest: dict[str, Any] = json.loads(b"".join(response.streaming_content))  # type: ignore[attr-defined]
    return manifest


def test_manifest_describes_an_installable_app(client: Client) -> None:
    manifest = _manifest(client)

    assert manifest["short_name"] == "Kontor"
    assert manifest["start_url"] == "/"
    assert manifest["display"] == "standalone"
    assert manifest["background_color"].startswith("#")
    assert manifest["theme_color"].startswith("#")
    sizes = {(icon["sizes"], icon.get("purpose", "any")) for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes


def test_manifest_icons_are_served_pngs_of_their_size(client: Client) -> None:
    manifest_url = f"{settings.STATIC_URL}manifest.webmanifest"
    for icon in _manifest(client)["icons"]:
        url = urljoin(manifest_url, icon["src"])  # relative to the manifest, as a browser resolves it
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"] == "image/png", url
        with Image.open(BytesIO(b"".join(response.streaming_content))) as image:  # type: ignore[attr-defined]
            assert f"{image.width}x{image.height}" == icon["sizes"], url


def test_manifest_is_served_as_a_web_app_manifest(client: Client) -> None:
    response = client.get(f"{settings.STATIC_URL}manifest.webmanifest")

    assert response["Content-Type"] == "application/manifest+json"


def test_kontor_pages_link_the_manifest_and_both_colour_schemes(pages: list[tuple[str, Client]]) -> None:
    for path, client in pages:
        head = _head(client.get(path).content.decode())
        rels = {link.get("rel"): link.get("href") for link in head.links}
        assert rels.get("manifest") == f"{settings.STATIC_URL}manifest.webmanifest", path
        touch_icon = rels.get("apple-touch-icon") or ""
        assert finders.find(touch_icon.removeprefix(settings.STATIC_URL)) is not None, path
        if path.startswith("/admin/"):
            continue  # Django admin has its own light/dark themes and colour-scheme handling
        metas = [(meta.get("name"), meta.get("content"), meta.get("media")) for meta in head.metas]
        assert ("color-scheme", "light dark", None) in metas, path
        theme_media = {media for name, _, media in metas if name == "theme-color"}
        assert theme_media == {"(prefers-color-scheme: light)", "(prefers-color-scheme: dark)"}, path
