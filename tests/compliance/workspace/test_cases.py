"""Cases: opened with a legal basis, approved by a second auditor when the
four-eyes rule is on, closed for good; each act exactly one audit event with
the address and browser it came from."""

from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse
from pytest_django import DjangoAssertNumQueries

from accounts.models import User
from compliance.audit import Origin
from compliance.models import AuditEvent, Case
from compliance.services import hold_set
from compliance.workspace import cases
from compliance.workspace.views.shared import refusals_shown
from messenger.models import Conversation
from tests.compliance.workspace.cases_helpers import (
    ADDRESS,
    BROWSER,
    client_for,
    make_auditor,
    with_totp,
    workspace_routes,
)

pytestmark = pytest.mark.django_db

# The session, the user, the guard (role, second factor), the navigation's
# roles, the page's one query (plus the case's events on its page).
PAGE_MAX_QUERIES = 7
# The session, the user, the guard (role, second factor), ``case_for_results``
# (role, second factor again, the case), the case again for the refusal page's
# link back (``selectors.case_find``), the navigation's roles.
REFUSED_QUERIES = 9
OWN_ROUTES = {"cases", "case_open", "case", "case_approve", "case_close"}


@pytest.fixture
def otto(auditor: User) -> User:
    return with_totp(auditor)


@pytest.fixture
def petra() -> User:
    """A second auditor."""
    return make_auditor("petra.pruefer@kontor.example", "Petra Prüfer")


@pytest.fixture
def four_eyes(settings: Any) -> None:
    settings.KONTOR_AUDIT_FOUR_EYES = True


def _open(otto: User, name: str = "Tax audit 2026") -> Case:
    return cases.case_open(actor=otto, name=name, legal_basis="§ 147 AO: the tax office's request of 2 March")


def _events(**filters: Any) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(**filters).order_by("pk"))


def _assert_one_event_from_the_browser(kind: str, actor: User, case: Case) -> AuditEvent:
    events = _events(kind=kind)
    assert len(events) == 1, events
    event = events[0]
    assert (event.actor, event.case, event.ip, event.user_agent) == (actor, case, ADDRESS, BROWSER)
    return event


# --- Opening ---------------------------------------------------------------------


def test_an_auditor_opens_a_case_from_the_workspace_home(otto: User) -> None:
    client = client_for(otto)
    home = client.get(reverse("compliance:cases")).content.decode()
    assert "Open a case" in home and 'name="legal_basis"' in home

    response = client.post(
        reverse("compliance:case_open"),
        {"name": "  Tax audit 2026 ", "legal_basis": "§ 147 AO", "scope": "Sales, 2024-2025"},
    )

    case = Case.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("compliance:case", args=[case.pk])
    assert (case.name, case.legal_basis, case.scope, case.opened_by) == (
        "Tax audit 2026",
        "§ 147 AO",
        "Sales, 2024-2025",
        otto,
    )
    event = _assert_one_event_from_the_browser(AuditEvent.Kind.CASE_OPENED, otto, case)
    assert event.detail["legal_basis"] == "§ 147 AO"
    assert AuditEvent.objects.count() == 1
    page = client.get(response["Location"]).content.decode()
    assert "Tax audit 2026" in page and "Case opened" in page


@pytest.mark.parametrize(
    ("name", "legal_basis", "error"),
    [("", "§ 147 AO", "This field is required."), ("Audit", "   ", "legal basis")],
)
def test_a_case_without_name_or_legal_basis_is_refused_and_nothing_is_written(
    otto: User, name: str, legal_basis: str, error: str
) -> None:
    response = client_for(otto).post(
        reverse("compliance:case_open"), {"name": name, "legal_basis": legal_basis}
    )

    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Case.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(("name", "legal_basis"), [(" ", "§ 147 AO"), ("Audit", "\n "), ("x" * 201, "y")])
def test_the_service_refuses_blank_or_oversized_input(otto: User, name: str, legal_basis: str) -> None:
    with pytest.raises(ValidationError):
        cases.case_open(actor=otto, name=name, legal_basis=legal_basis)
    assert not Case.objects.exists()
    assert not AuditEvent.objects.exists()


def test_only_auditors_with_mfa_can_open_a_case_through_the_service(alice: User, auditor: User) -> None:
    for person in (alice, auditor):  # the auditor has no second factor yet
        with pytest.raises(Http404):
            _open(person)
    assert not Case.objects.exists()


# --- Four eyes -------------------------------------------------------------------


def test_without_four_eyes_a_new_case_opens_its_results_at_once(otto: User) -> None:
    case = _open(otto)
    assert cases.case_for_results(otto, case.pk) == case


def test_four_eyes_refuses_results_until_a_second_auditor_approves(
    otto: User, petra: User, four_eyes: None
) -> None:
    case = _open(otto)
    with pytest.raises(PermissionDenied, match="second auditor"):
        cases.case_for_results(otto, case.pk)
    with pytest.raises(PermissionDenied):
        cases.case_for_results(petra, case.pk)
    page = client_for(otto).get(reverse("compliance:case", args=[case.pk])).content.decode()
    assert "awaits approval by a second auditor" in page
    assert reverse("compliance:case_approve", args=[case.pk]) not in page  # not for the opener

    response = client_for(petra).post(reverse("compliance:case_approve", args=[case.pk]))

    assert response.status_code == 302
    case.refresh_from_db()
    assert case.approved_by == petra and case.approved_at is not None
    _assert_one_event_from_the_browser(AuditEvent.Kind.CASE_APPROVED, petra, case)
    assert cases.case_for_results(otto, case.pk) == case


def test_the_opener_cannot_approve_their_own_case(otto: User, four_eyes: None) -> None:
    case = _open(otto)
    client = client_for(otto)

    response = client.post(reverse("compliance:case_approve", args=[case.pk]), follow=True)

    assert "a second auditor must approve it" in response.content.decode()
    case.refresh_from_db()
    assert case.approved_at is None
    assert not _events(kind=AuditEvent.Kind.CASE_APPROVED)
    with pytest.raises(ValidationError):
        cases.case_approve(actor=otto, case_id=case.pk)


def test_a_case_is_approved_once(otto: User, petra: User, four_eyes: None) -> None:
    case = _open(otto)
    third = make_auditor("tom.third@kontor.example", "Tom Third")
    cases.case_approve(actor=petra, case_id=case.pk)

    with pytest.raises(ValidationError, match="already approved"):
        cases.case_approve(actor=third, case_id=case.pk)
    case.refresh_from_db()
    assert case.approved_by == petra
    assert len(_events(kind=AuditEvent.Kind.CASE_APPROVED)) == 1


def test_other_areas_refuse_an_unapproved_case(otto: User, petra: User, four_eyes: None) -> None:
    # Every route of search, conversations and exports that names only a case
    # goes through case_for_results: refused (403), not shown.
    case = _open(otto)
    client = client_for(otto)
    checked = []
    for route in workspace_routes({"case": case.pk}):
        if (
            route.name.split(":")[-1] in OWN_ROUTES
            or len(route.arguments) != 1
            or "case" not in route.arguments[0]
        ):
            continue
        response = client.get(route.url)
        if response.status_code == 405:  # POST only
            response = client.post(route.url)
        checked.append(route.name)
        assert response.status_code == 403, route.name
        # The workspace's refusal page, with the reason and a way back to the case.
        assert reverse("compliance:case", args=[case.pk]) in response.content.decode(), route.name
    # The search at least: the other areas' routes join as they are built.
    assert "compliance:search" in checked
    cases.case_approve(actor=petra, case_id=case.pk)
    for name in checked:
        response = client.get(reverse(name, args=[case.pk]))
        if response.status_code == 405:
            response = client.post(reverse(name, args=[case.pk]))
        assert response.status_code != 403, name


def test_a_refused_page_costs_a_fixed_number_of_queries(
    otto: User, four_eyes: None, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    case = _open(otto)
    client = client_for(otto)
    url = reverse("compliance:conversations", args=[case.pk])
    client.get(url)  # a first request may refresh the session

    with django_assert_num_queries(REFUSED_QUERIES):
        response = client.get(url)

    assert response.status_code == 403
    assert reverse("compliance:case", args=[case.pk]) in response.content.decode()


def test_a_case_act_records_the_origin_it_is_given(otto: User, petra: User, four_eyes: None) -> None:
    # Services take the actor and the origin, not a request: a page passes its
    # request's origin, a shell or a task none.
    page = Origin(ip="198.51.100.4", user_agent="KontorTest/2.0")
    case = cases.case_open(actor=otto, name="Tax audit 2026", legal_basis="§ 147 AO", origin=page)
    cases.case_approve(actor=petra, case_id=case.pk, origin=page)
    cases.case_close(actor=otto, case_id=case.pk, reason="Audit report delivered")

    events = AuditEvent.objects.filter(case=case).order_by("pk")
    assert list(events.values_list("kind", "actor", "ip", "user_agent")) == [
        (AuditEvent.Kind.CASE_OPENED, otto.pk, "198.51.100.4", "KontorTest/2.0"),
        (AuditEvent.Kind.CASE_APPROVED, petra.pk, "198.51.100.4", "KontorTest/2.0"),
        (AuditEvent.Kind.CASE_CLOSED, otto.pk, None, ""),
    ]


# --- Closing ---------------------------------------------------------------------


def test_closing_a_case_needs_a_reason_and_ends_its_results(otto: User, petra: User) -> None:
    case = _open(otto)
    client = client_for(petra)
    url = reverse("compliance:case_close", args=[case.pk])

    refused = client.post(url, {"reason": "  "})
    assert refused.status_code == 400
    case.refresh_from_db()
    assert case.closed_at is None
    assert not _events(kind=AuditEvent.Kind.CASE_CLOSED)

    response = client.post(url, {"reason": "Audit report delivered"})

    assert response.status_code == 302
    case.refresh_from_db()
    assert case.closed_by == petra and case.closed_at is not None
    event = _assert_one_event_from_the_browser(AuditEvent.Kind.CASE_CLOSED, petra, case)
    assert event.detail["reason"] == "Audit report delivered"
    with pytest.raises(PermissionDenied, match="closed"):
        cases.case_for_results(otto, case.pk)
    page = client.get(reverse("compliance:case", args=[case.pk])).content.decode()
    assert "This case is closed" in page and "Audit report delivered" in page
    assert url not in page  # no second close


def test_a_closed_case_can_be_neither_closed_again_nor_approved(
    otto: User, petra: User, four_eyes: None
) -> None:
    case = _open(otto)
    cases.case_close(actor=otto, case_id=case.pk, reason="Opened by mistake")

    with pytest.raises(ValidationError, match="already closed"):
        cases.case_close(actor=petra, case_id=case.pk, reason="again")
    with pytest.raises(ValidationError, match="closed"):
        cases.case_approve(actor=petra, case_id=case.pk)
    assert len(_events(case=case)) == 2  # opened, closed


def test_case_for_results_hides_missing_cases_and_non_auditors(otto: User, alice: User) -> None:
    case = _open(otto)
    for person in (alice, AnonymousUser(), None):
        with pytest.raises(Http404):
            cases.case_for_results(person, case.pk)
    with pytest.raises(Http404):
        cases.case_for_results(otto, case.pk + 1000)


# --- The cases list --------------------------------------------------------------


def test_the_cases_list_shows_open_cases_with_their_state(otto: User, petra: User, four_eyes: None) -> None:
    waiting, approved, closed = (
        _open(otto, "Alpha inquiry"),
        _open(otto, "Beta inquiry"),
        _open(otto, "Gamma inquiry"),
    )
    cases.case_approve(actor=petra, case_id=approved.pk)
    cases.case_close(actor=petra, case_id=closed.pk, reason="done")
    client = client_for(otto)

    open_page = client.get(reverse("compliance:cases")).content.decode()
    closed_page = client.get(reverse("compliance:cases"), {"status": "closed"}).content.decode()
    awaiting_page = client.get(reverse("compliance:cases"), {"status": "awaiting"}).content.decode()

    assert "Alpha inquiry" in open_page and "Beta inquiry" in open_page and "Gamma inquiry" not in open_page
    assert "Awaiting approval</span>" in open_page and "approved by Petra Prüfer" in open_page
    assert "Gamma inquiry" in closed_page and "Alpha inquiry" not in closed_page
    assert str(waiting) in awaiting_page and "Beta inquiry" not in awaiting_page


def test_the_cases_list_pages_by_keyset(otto: User) -> None:
    made = [_open(otto, f"Case number {n:03}") for n in range(55)]
    client = client_for(otto)

    first = client.get(reverse("compliance:cases")).content.decode()
    assert "Case number 054" in first and "Case number 005" in first and "Case number 004" not in first
    second = client.get(
        reverse("compliance:cases"), {"status": "open", "before": str(made[5].pk)}
    ).content.decode()
    assert "Case number 004" in second and "Case number 000" in second and "Case number 005" not in second


def test_the_cases_list_query_count_does_not_grow_with_cases(
    otto: User,
    petra: User,
    four_eyes: None,
    django_assert_num_queries: DjangoAssertNumQueries,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    _open(otto, "First")
    client = client_for(otto)
    client.get(reverse("compliance:cases"))  # a first request may refresh the session

    with django_assert_max_num_queries(PAGE_MAX_QUERIES) as few:
        assert client.get(reverse("compliance:cases"), {"status": "all"}).status_code == 200
    baseline = len(few)

    for n in range(12):
        case = _open(petra if n % 2 else otto, f"More {n}")
        if n % 3 == 0:
            cases.case_approve(actor=otto if n % 2 else petra, case_id=case.pk)
        if n % 4 == 0:
            cases.case_close(actor=otto, case_id=case.pk, reason="done")
    with django_assert_num_queries(baseline):
        page = client.get(reverse("compliance:cases"), {"status": "all"})
    assert page.content.decode().count('href="/compliance/cases/') >= 13


def test_the_case_page_query_count_does_not_grow_with_its_events(
    otto: User,
    petra: User,
    django_assert_num_queries: DjangoAssertNumQueries,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    case = _open(otto)
    client = client_for(otto)
    url = reverse("compliance:case", args=[case.pk])
    client.get(url)
    with django_assert_max_num_queries(PAGE_MAX_QUERIES) as few:
        client.get(url)
    baseline = len(few)
    for person in (otto, petra) * 10:
        AuditEvent.objects.create(kind=AuditEvent.Kind.SEARCHED, actor=person, case=case, detail={"q": "x"})
    with django_assert_num_queries(baseline):
        assert client.get(url).status_code == 200


# --- The pages themselves --------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.style_attributes = 0
        self.unlabelled: list[str] = []
        self.labels: set[str] = set()
        self.inputs: list[tuple[str, str]] = []
        self._script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls += [v for k, v in values.items() if k in ("src", "href", "action") and v is not None]
        self.style_attributes += "style" in values
        if tag == "script" and not values.get("src"):
            self._script = True
        if tag == "style":
            self.inline_scripts += 1
        if tag == "label" and values.get("for"):
            self.labels.add(values["for"] or "")
        if tag in ("input", "select", "textarea") and values.get("type") not in ("hidden", "submit"):
            self.inputs.append((values.get("id") or "", values.get("name") or ""))

    def handle_data(self, data: str) -> None:
        if self._script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = False


def test_workspace_pages_have_no_inline_script_or_style_and_label_every_field(
    otto: User, petra: User, dm: Conversation, four_eyes: None
) -> None:
    case = _open(otto)
    hold = hold_set(actor=otto, name="Court case", reason="Litigation", conversation=dm)
    client: Client = client_for(petra)
    pages = [
        reverse("compliance:cases"),
        reverse("compliance:case_open"),
        reverse("compliance:case", args=[case.pk]),
        reverse("compliance:case_close", args=[case.pk]),
        reverse("compliance:holds"),
        reverse("compliance:hold_new"),
        reverse("compliance:hold", args=[hold.pk]),
        reverse("compliance:audit_trail"),
    ]
    static_files = 0
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
        assert (policy["default-src"], policy["script-src"], policy["style-src"]) == ("'self'",) * 3
        page = _Page()
        page.feed(response.content.decode())
        assert (page.inline_scripts, page.style_attributes) == (0, 0), url
        for link in page.urls:
            assert not link.startswith(("http:", "https:", "//")), (url, link)
            if link.startswith("/static/"):
                assert finders.find(link.removeprefix("/static/")) is not None, link
                static_files += 1
        assert all(ident in page.labels for ident, _ in page.inputs), (url, page.inputs, page.labels)
    assert static_files >= len(pages) * 3
    stylesheet = finders.find("css/compliance.css")
    assert stylesheet is not None
    with open(stylesheet, encoding="utf-8") as css:
        text = css.read()
    assert ":focus" in text and "@media" in text and "http" not in text


def test_a_refused_case_is_shown_with_its_reason_in_the_workspace(
    otto: User, four_eyes: None, rf: RequestFactory
) -> None:
    case = _open(otto)

    @refusals_shown
    def results(request: HttpRequest, case_id: int) -> HttpResponse:
        cases.case_for_results(otto, case_id)
        return HttpResponse("results")

    request = rf.get(f"/compliance/search/{case.pk}/")
    request.user = otto
    request.session = {}  # type: ignore[assignment]
    request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
    response = results(request, case_id=case.pk)

    assert response.status_code == 403
    page = response.content.decode()
    assert "awaits approval by a second auditor" in page
    assert reverse("compliance:case", args=[case.pk]) in page
