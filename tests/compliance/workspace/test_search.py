"""Searching the archive: what an auditor finds (and does not), the filters,
paging deep into the results, the page and its audit trail."""

from datetime import UTC, date, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse

from accounts.models import Department, User
from compliance.models import ArchivedMessage, AuditEvent, Case
from compliance.workspace import cases, search
from compliance.workspace.search import Criteria
from messenger import services as chat
from messenger.models import Conversation
from tests.archive.conftest import PDF, png_bytes
from tests.compliance.workspace.search_helpers import archive, delete_live_chat, text_file, upload
from tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("file_storage")]


@pytest.fixture
def auditor_mfa(auditor: User) -> User:
    """The auditor with an authenticator app: the workspace lets them in."""
    TOTP.activate(auditor, generate_totp_secret())
    return auditor


@pytest.fixture
def case(auditor_mfa: User) -> Case:
    return cases.case_open(actor=auditor_mfa, name="Tax audit 2026", legal_basis="AO §147, Betriebsprüfung")


@pytest.fixture
def browser(auditor_mfa: User) -> Client:
    client = Client(headers={"user-agent": "AuditBrowser/1.0"}, REMOTE_ADDR="198.51.100.4")
    client.force_login(auditor_mfa)
    return client


def found(criteria: Criteria) -> list[str]:
    """Every hit's body, across all pages."""
    bodies: list[str] = []
    after = None
    while True:
        page = search.page(criteria, after=after)
        bodies += [hit.message.body for hit in page.hits]
        if page.next is None:
            return bodies
        after = page.next


def url(case: Case, **params: Any) -> str:
    return (
        reverse("compliance:search", args=[case.pk]) + "?" + "&".join(f"{k}={v}" for k, v in params.items())
    )


def searches() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(kind=AuditEvent.Kind.SEARCHED).order_by("pk"))


# --- What is found ------------------------------------------------------------


def test_edited_away_and_deleted_text_is_found_only_when_asked_for(
    alice: User, bob: User, dm: Conversation
) -> None:
    offer = chat.message_send(actor=alice, conversation_id=dm.pk, body="Rabatt 15 Prozent Nordhafen").message
    chat.message_edit(actor=alice, message_id=offer.pk, body="Rabatt 10 Prozent Nordhafen")
    secret = chat.message_send(actor=bob, conversation_id=dm.pk, body="Schwarzgeld Nordhafen").message
    chat.message_delete(actor=bob, message_id=secret.pk)
    archive(dm)

    assert found(Criteria(q="Nordhafen")) == ["Rabatt 10 Prozent Nordhafen"]
    assert found(Criteria(q="15")) == []
    assert found(Criteria(q="Schwarzgeld")) == []
    assert found(Criteria(q="15", all_versions=True)) == ["Rabatt 15 Prozent Nordhafen"]
    assert found(Criteria(q="Schwarzgeld", all_versions=True)) == [
        "Schwarzgeld Nordhafen",
        "Schwarzgeld Nordhafen",
    ]
    kinds = [h.message.kind for h in search.page(Criteria(q="Nordhafen", all_versions=True)).hits]
    assert kinds == ["deleted", "created", "edited", "created"]


def test_a_version_edited_in_a_later_record_is_no_longer_current(alice: User, dm: Conversation) -> None:
    offer = chat.message_send(actor=alice, conversation_id=dm.pk, body="Lieferung Dienstag").message
    archive(dm)
    chat.message_edit(actor=alice, message_id=offer.pk, body="Lieferung Mittwoch")
    archive(dm)

    assert found(Criteria(q="Lieferung")) == ["Lieferung Mittwoch"]
    assert found(Criteria(q="Dienstag")) == []
    assert found(Criteria(q="Dienstag", all_versions=True)) == ["Lieferung Dienstag"]


def test_text_inside_an_attached_file_is_found_and_the_hit_says_where(alice: User, dm: Conversation) -> None:
    notes = text_file(alice, "Protokoll.txt", "Vereinbart wurde ein Nachlass auf die Kühlcontainer.")
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Das Protokoll anbei", file_ids=[notes.pk])
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Ohne Anhang")
    archive(dm)

    page = search.page(Criteria(q="Kühlcontainer"))

    assert [hit.message.body for hit in page.hits] == ["Das Protokoll anbei"]
    assert page.hits[0].found_in == "Protokoll.txt"
    assert "<mark>Kühlcontainer</mark>" in page.hits[0].snippet


def test_the_query_syntax_phrases_alternatives_and_exclusions(alice: User, dm: Conversation) -> None:
    for body in ("Rechnung an Nordhafen GmbH", "Nordhafen Rechnung offen", "Mahnung an Südhafen"):
        chat.message_send(actor=alice, conversation_id=dm.pk, body=body)
    archive(dm)

    assert found(Criteria(q='"Rechnung an Nordhafen"')) == ["Rechnung an Nordhafen GmbH"]
    assert found(Criteria(q="Rechnung -offen")) == ["Rechnung an Nordhafen GmbH"]
    assert found(Criteria(q="Mahnung or offen")) == ["Mahnung an Südhafen", "Nordhafen Rechnung offen"]
    assert len(found(Criteria(q="RECHNUNG nordhafen"))) == 2
    assert found(Criteria(q="-- ! ?")) == []  # no word in it: nothing, not everything


def test_the_highlight_escapes_the_message_and_marks_the_words(alice: User, dm: Conversation) -> None:
    chat.message_send(
        actor=alice, conversation_id=dm.pk, body='<script>alert("Provision")</script> & Provision'
    )
    archive(dm)

    snippet = search.page(Criteria(q="Provision")).hits[0].snippet

    assert "<script>" not in snippet
    assert snippet == (
        "&lt;script&gt;alert(&quot;<mark>Provision</mark>&quot;)&lt;/script&gt; &amp; <mark>Provision</mark>"
    )


def test_the_live_chat_is_never_read(alice: User, bob: User, dm: Conversation) -> None:
    notes = text_file(alice, "Vertrag.txt", "Vertragsstrafe zehntausend")
    chat.message_send(
        actor=alice, conversation_id=dm.pk, body="Preisabsprache Hafenkran", file_ids=[notes.pk]
    )
    chat.message_send(actor=bob, conversation_id=dm.pk, body="Bitte löschen")
    archive(dm)

    delete_live_chat(dm)
    with CaptureQueriesContext(connection) as queries:
        by_text = found(Criteria(q="Hafenkran"))
        by_file = found(Criteria(q="Vertragsstrafe", participant_id=bob.pk))

    assert by_text == by_file == ["Preisabsprache Hafenkran"]
    assert not [q["sql"] for q in queries.captured_queries if "messenger_" in q["sql"]]


# --- Filters ------------------------------------------------------------------


def test_participant_is_the_sender_or_a_member_at_the_time(alice: User, bob: User, charlie: User) -> None:
    group = chat.group_create(actor=alice, name="Einkauf", member_ids=[bob.pk])
    chat.message_send(actor=alice, conversation_id=group.pk, body="Angebot Kran A")
    archive(group)
    chat.members_add(actor=alice, conversation_id=group.pk, user_ids=[charlie.pk])
    chat.message_send(actor=charlie, conversation_id=group.pk, body="Angebot Kran B")
    archive(group)

    assert found(Criteria(q="Angebot", participant_id=alice.pk)) == ["Angebot Kran B", "Angebot Kran A"]
    assert found(Criteria(q="Angebot", participant_id=bob.pk)) == ["Angebot Kran B", "Angebot Kran A"]
    # charlie joined later: only what was written while a member.
    assert found(Criteria(q="Angebot", participant_id=charlie.pk)) == ["Angebot Kran B"]
    outsider = make_user(email="dora@kontor.example", display_name="Dora Dietz")
    assert found(Criteria(q="Angebot", participant_id=outsider.pk)) == []


def test_conversation_and_department_filters(alice: User, bob: User, charlie: User, dm: Conversation) -> None:
    alice.department = Department.objects.create(name="Einkauf")
    alice.save()
    bob.department = Department.objects.create(name="Vertrieb")
    bob.save()
    other = chat.direct_open(actor=alice, other_user_id=charlie.pk)
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Termin Alice an Bob")
    chat.message_send(actor=bob, conversation_id=dm.pk, body="Termin Bob an Alice")
    chat.message_send(actor=alice, conversation_id=other.pk, body="Termin Alice an Charlie")
    archive(dm, other)
    # Departments as captured: a later move does not change what was archived.
    alice.department = bob.department
    alice.save()

    assert found(Criteria(q="Termin", conversation_id=other.pk)) == ["Termin Alice an Charlie"]
    assert found(Criteria(q="Termin", department="Einkauf")) == [
        "Termin Alice an Charlie",
        "Termin Alice an Bob",
    ]
    assert found(Criteria(q="Termin", department="Vertrieb")) == ["Termin Bob an Alice"]
    assert found(Criteria(q="Termin", department="Vertrieb", conversation_id=other.pk)) == []


def test_the_date_range_is_whole_days_in_the_searchers_time_zone(alice: User, dm: Conversation) -> None:
    bodies = ["Zahlung März", "Zahlung Ende März", "Zahlung April"]
    for body in bodies:
        chat.message_send(actor=alice, conversation_id=dm.pk, body=body)
    archive(dm)
    # Place the versions in time (the index is derived data; the records stay as they are):
    # 31 March 21:30 UTC is 23:30 in Berlin; 22:30 UTC is already 1 April there.
    times = [datetime(2026, 3, 10, 9, 0, tzinfo=UTC), datetime(2026, 3, 31, 21, 30, tzinfo=UTC)]
    times.append(datetime(2026, 3, 31, 22, 30, tzinfo=UTC))
    for body, at in zip(bodies, times, strict=True):
        ArchivedMessage.objects.filter(body=body).update(at=at)
    start, end = date(2026, 3, 1), date(2026, 3, 31)

    berlin = found(Criteria(q="Zahlung", time_zone="Europe/Berlin", date_from=start, date_to=end))
    utc = found(Criteria(q="Zahlung", time_zone="UTC", date_from=start, date_to=end))
    from_april = found(Criteria(q="Zahlung", time_zone="Europe/Berlin", date_from=date(2026, 4, 1)))

    assert berlin == ["Zahlung Ende März", "Zahlung März"]
    assert utc == ["Zahlung April", "Zahlung Ende März", "Zahlung März"]
    assert from_april == ["Zahlung April"]


def test_attachment_and_file_type_filters(alice: User, dm: Conversation) -> None:
    pdf = upload(alice, PDF, "Rechnung.pdf")
    picture = upload(alice, png_bytes(), "Lieferschein.png")
    notes = text_file(alice, "Notiz.txt", "nur Text")
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Beleg als PDF", file_ids=[pdf.pk])
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Beleg als Bild", file_ids=[picture.pk])
    chat.message_send(
        actor=alice, conversation_id=dm.pk, body="Beleg als Text und Bild", file_ids=[notes.pk, picture.pk]
    )
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Beleg folgt")
    archive(dm)

    assert len(found(Criteria(q="Beleg"))) == 4
    assert found(Criteria(q="Beleg", has_files=True)) == [
        "Beleg als Text und Bild",
        "Beleg als Bild",
        "Beleg als PDF",
    ]
    assert found(Criteria(q="Beleg", file_type="application/pdf")) == ["Beleg als PDF"]
    assert found(Criteria(q="Beleg", file_type="image/")) == ["Beleg als Text und Bild", "Beleg als Bild"]
    assert found(Criteria(q="Beleg", file_type="text/plain")) == ["Beleg als Text und Bild"]


# --- Paging -------------------------------------------------------------------


def test_keyset_paging_returns_every_hit_exactly_once_even_when_times_tie(
    alice: User, dm: Conversation
) -> None:
    for n in range(60):
        chat.message_send(actor=alice, conversation_id=dm.pk, body=f"Posten {n}")
    archive(dm)
    # Many versions at the very same moment: the id breaks the tie.
    same = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    ArchivedMessage.objects.filter(body__in=[f"Posten {n}" for n in range(10, 40)]).update(at=same)

    pages: list[list[str]] = []
    after = None
    while True:
        page = search.page(Criteria(q="Posten"), after=after, size=7)
        pages.append([hit.message.body for hit in page.hits])
        if page.next is None:
            break
        after = page.next

    everything = [body for page in pages for body in page]
    assert len(pages) == 9 and all(len(page) == 7 for page in pages[:-1])
    assert sorted(everything) == sorted(f"Posten {n}" for n in range(60))
    expected = list(ArchivedMessage.objects.order_by("-at", "-id").values_list("body", flat=True))
    assert everything == expected


def test_a_page_is_one_query_however_deep(
    alice: User, dm: Conversation, django_assert_num_queries: Any
) -> None:
    for n in range(30):
        chat.message_send(actor=alice, conversation_id=dm.pk, body=f"Zeile {n}")
    archive(dm)
    criteria = Criteria(q="Zeile", participant_id=alice.pk, department="", has_files=False)
    first = search.page(criteria, size=10)

    with django_assert_num_queries(1):
        deeper = search.page(criteria, after=first.next, size=10)
    with django_assert_num_queries(1):
        assert search.count(criteria) == (30, False)

    assert deeper.hits[0].message.body == "Zeile 19"
    assert search.count(criteria, cap=20) == (20, True)


@pytest.mark.parametrize("few", [True, False])
def test_telling_a_page_its_hits_are_few_changes_no_result(alice: User, dm: Conversation, few: bool) -> None:
    for n in range(12):
        chat.message_send(actor=alice, conversation_id=dm.pk, body=f"Palette {n} {'eilig' if n % 3 else ''}")
    archive(dm)
    criteria = Criteria(q="Palette eilig")
    plain = search.page(criteria, size=3)

    with CaptureQueriesContext(connection) as queries:
        told = search.page(criteria, size=3, few=few)
        deeper = search.page(criteria, size=3, after=told.next, few=few)

    assert [h.message.pk for h in told.hits] == [h.message.pk for h in plain.hits]
    assert [h.message.body for h in deeper.hits] == ["Palette 7 eilig", "Palette 5 eilig", "Palette 4 eilig"]
    assert len(queries.captured_queries) == 2
    # On PostgreSQL the order of a few hits is one no index provides (they are sorted, not walked to).
    unindexed = connection.vendor == "postgresql" and few
    assert all(("interval '0 seconds'" in q["sql"]) == unindexed for q in queries.captured_queries)


# --- The page -----------------------------------------------------------------


def test_a_search_is_one_audit_event_with_its_query_filters_and_count(
    browser: Client, case: Case, alice: User, auditor_mfa: User, dm: Conversation
) -> None:
    for n in range(30):
        chat.message_send(actor=alice, conversation_id=dm.pk, body=f"Lieferant Nummer {n}")
    archive(dm)

    response = browser.get(url(case, q="Lieferant", participant=alice.pk, all_versions="on"))

    assert response.status_code == 200
    [event] = searches()
    assert (event.actor, event.case, event.ip, event.user_agent) == (
        auditor_mfa,
        case,
        "198.51.100.4",
        "AuditBrowser/1.0",
    )
    assert event.detail == {
        "query": "Lieferant",
        "filters": {"participant_id": alice.pk, "all_versions": True},
        "results": 30,
        "results_capped": False,
    }
    page = response.content.decode()
    assert "30 results" in page
    assert page.count('<tr id="hit-') == search.PAGE_SIZE
    # The next page continues the logged search: no second event.
    next_url = response.context["next_token"]
    assert next_url
    second = browser.get(url(case, q="Lieferant", participant=alice.pk, all_versions="on", after=next_url))
    assert second.status_code == 200
    assert second.content.decode().count('<tr id="hit-') == 30 - search.PAGE_SIZE
    assert len(searches()) == 1
    # The same cursor with other words is another search, and is logged.
    browser.get(url(case, q="Nummer", after=next_url))
    assert [e.detail["query"] for e in searches()] == ["Lieferant", "Nummer"]


def test_opening_the_page_is_no_search_and_an_invalid_form_logs_nothing(browser: Client, case: Case) -> None:
    assert browser.get(reverse("compliance:search", args=[case.pk])).status_code == 200
    response = browser.get(url(case, q="x", date_from="2026-05-02", date_to="2026-05-01"))

    assert response.status_code == 400
    assert "The end of the range comes before its start." in response.content.decode()
    assert searches() == []


def test_each_hit_links_to_its_conversation_at_that_moment(
    browser: Client, case: Case, alice: User, dm: Conversation
) -> None:
    sent = chat.message_send(actor=alice, conversation_id=dm.pk, body="Übergabeprotokoll").message
    archive(dm)

    hit = browser.get(url(case, q="Übergabeprotokoll")).context["hits"][0]

    try:
        base = reverse("compliance:conversation", args=[case.pk, dm.pk])
    except NoReverseMatch:
        assert hit.link is None  # the reconstruction page is not built yet
        return
    link = urlsplit(hit.link)
    assert link.path == base
    assert link.fragment == f"m{sent.pk}"
    assert datetime.fromisoformat(parse_qs(link.query)["at"][0]) == hit.message.at


def test_the_page_costs_the_same_queries_for_one_hit_and_for_sixty(
    browser: Client, case: Case, alice: User, bob: User, dm: Conversation
) -> None:
    def queries_for_search() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            response = browser.get(url(case, q="Bestellung", all_versions="on"))
        assert response.status_code == 200
        return [query["sql"] for query in captured.captured_queries]

    chat.message_send(actor=alice, conversation_id=dm.pk, body="Bestellung 0")
    archive(dm)
    one = queries_for_search()
    for n in range(1, 60):
        sender = alice if n % 2 else bob
        sent = chat.message_send(actor=sender, conversation_id=dm.pk, body=f"Bestellung {n}").message
        if n % 10 == 0:
            chat.message_edit(actor=sender, message_id=sent.pk, body=f"Bestellung {n} geändert")
    archive(dm)
    sixty = queries_for_search()

    assert len(one) == len(sixty) <= 20
    # Of the archive's index: the conversations offered, the count, the page.
    assert len([sql for sql in sixty if "compliance_archivedmessage" in sql]) == 3


def test_people_without_the_auditor_role_and_mfa_get_404(
    case: Case, alice: User, hr_user: User, dm: Conversation
) -> None:
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Vertraulich")
    archive(dm)
    auditor_without_mfa = make_user(email="ida@kontor.example", roles=["Auditors"])
    superuser = make_user(email="root@kontor.example")
    superuser.is_superuser = superuser.is_staff = True
    superuser.save()

    for person in (alice, hr_user, auditor_without_mfa, superuser, None):
        client = Client()
        if person is not None:
            client.force_login(person)
        response = client.get(url(case, q="Vertraulich"))
        assert response.status_code == 404, person
        assert b"Vertraulich" not in response.content
    assert searches() == []


def test_a_closed_case_opens_no_results(browser: Client, case: Case, auditor_mfa: User) -> None:
    cases.case_close(actor=auditor_mfa, case_id=case.pk, reason="Bericht abgegeben")

    response = browser.get(url(case, q="irgendwas"))

    assert response.status_code == 403
    assert searches() == []


def test_explain_uses_the_full_text_index_on_postgresql(alice: User, dm: Conversation) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    for n in range(50):
        chat.message_send(actor=alice, conversation_id=dm.pk, body=f"Allerlei Worte {n}")
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Seltenes Wort Zollbescheid")
    archive(dm)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE compliance_archivedmessage")
        # On a tiny table any plan is cheap: leave the planner only the
        # bitmap scans, which need an index whose expression is the query's.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")

    criteria = Criteria(q="Zollbescheid")
    plan = search.matching(criteria).order_by("-at", "-id")[:26].explain()

    assert "compliance_archived_fts" in plan
    assert [hit.message.body for hit in search.page(criteria).hits] == ["Seltenes Wort Zollbescheid"]


class _Markup(HTMLParser):
    """Counts style attributes and inline scripts (the CSP allows neither)."""

    def __init__(self) -> None:
        super().__init__()
        self.styles = self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.styles += any(name == "style" for name, _ in attrs)
        self._in_script = tag == "script" and not dict(attrs).get("src")

    def handle_data(self, data: str) -> None:
        self.inline_scripts += bool(self._in_script and data.strip())

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


def test_the_page_has_no_inline_scripts_or_styles_even_when_a_message_has_them(
    browser: Client, case: Case, alice: User, dm: Conversation
) -> None:
    chat.message_send(
        actor=alice, conversation_id=dm.pk, body='Angebot <b style="color:red">jetzt</b><script>x()</script>'
    )
    archive(dm)

    markup = _Markup()
    markup.feed(browser.get(url(case, q="Angebot")).content.decode())

    assert (markup.styles, markup.inline_scripts) == (0, 0)


def test_the_choices_come_from_the_archive(alice: User, bob: User, charlie: User, dm: Conversation) -> None:
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Hallo")
    archive(dm)
    chat.channel_create(actor=charlie, name="lager")  # not archived yet: not offered

    choices = search.filter_choices()

    assert [pk for pk, _ in choices.participants] == [alice.pk, bob.pk]
    assert choices.conversations == [(dm.pk, "Alice Adler & Bob Brandt")]
