"""The audit trail: every event newest first, filterable, paged by keyset;
readable by auditors and the data protection officer; looking at it and
exporting it are audit events themselves; the export is JSON Lines with
every event."""

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from django.urls import reverse
from pytest_django import DjangoAssertNumQueries

from accounts.models import User
from compliance.models import AuditEvent, Case
from compliance.workspace import cases, trail
from tests.compliance.workspace.cases_helpers import (
    ADDRESS,
    BROWSER,
    client_for,
    make_auditor,
    make_dpo,
    with_totp,
)

pytestmark = pytest.mark.django_db

TRAIL = "/compliance/audit/"
EXPORT = "/compliance/audit/export.jsonl"
# The session, the user, the guard (role, second factor), the page's events,
# the case filter's choices, the people for the "who" field, the navigation's
# roles, and writing the "audit log viewed" event.
TRAIL_MAX_QUERIES = 10
ROW = re.compile(r"<span class=\"ws-table__sub\">no\. (\d+)</span>")


@pytest.fixture
def otto(auditor: User) -> User:
    return with_totp(auditor)


@pytest.fixture
def petra() -> User:
    return make_auditor("petra.pruefer@kontor.example", "Petra Prüfer")


def _shown(response: Any) -> list[int]:
    assert response.status_code == 200
    return [int(n) for n in ROW.findall(response.content.decode())]


def _events(
    count: int, *, actor: User | None = None, case: Case | None = None, kind: str = "searched"
) -> None:
    AuditEvent.objects.bulk_create(
        AuditEvent(kind=kind, actor=actor, case=case, detail={"query": f"q{n}"}) for n in range(count)
    )


def test_the_trail_lists_every_event_newest_first_and_logs_the_look(otto: User, petra: User) -> None:
    case = cases.case_open(actor=otto, name="Tax audit", legal_basis="§ 147 AO")
    cases.case_close(actor=petra, case_id=case.pk, reason="Report delivered")
    _events(3, actor=otto, case=case)
    before = list(AuditEvent.objects.order_by("-pk").values_list("pk", flat=True))

    response = client_for(petra).get(TRAIL)

    assert _shown(response) == before
    page = response.content.decode()
    assert "Case closed" in page and "Report delivered" in page and "Tax audit" in page
    looked = AuditEvent.objects.get(kind=AuditEvent.Kind.AUDIT_LOG_VIEWED)
    assert (looked.actor, looked.ip, looked.user_agent, looked.case) == (petra, ADDRESS, BROWSER, None)
    assert AuditEvent.objects.count() == len(before) + 1
    assert _shown(client_for(petra).get(TRAIL))[0] == looked.pk  # the next look shows it


def test_filters_narrow_the_trail_and_are_logged(otto: User, petra: User) -> None:
    tax = cases.case_open(actor=otto, name="Tax audit", legal_basis="§ 147 AO")
    court = cases.case_open(actor=petra, name="Court case", legal_basis="ZPO § 142")
    _events(2, actor=otto, case=tax)
    _events(3, actor=petra, case=court)
    _events(1, kind=AuditEvent.Kind.SNAPSHOT)
    client = client_for(otto)

    def count(**query: Any) -> int:
        return len(_shown(client.get(TRAIL, query)))

    assert count(kind="searched") == 5
    assert count(actor="PETRA.pruefer@kontor.example") == 4  # opened a case, searched thrice
    assert count(actor="system") == 1
    assert count(case=tax.pk) == 3
    assert count(case=court.pk, kind="case_opened") == 1
    last = AuditEvent.objects.filter(kind=AuditEvent.Kind.AUDIT_LOG_VIEWED).latest("pk")
    assert last.detail["filters"]["kind"] == "case_opened" and last.detail["filters"]["case"] == court.pk


def test_the_date_range_is_in_the_readers_days(otto: User) -> None:
    otto.time_zone = "Europe/Berlin"
    otto.save(update_fields=["time_zone"])
    # 23:30 on 1 March in UTC is already 2 March in Berlin.
    late = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    AuditEvent.objects.create(kind=AuditEvent.Kind.SEARCHED, actor=otto, created_at=late)
    AuditEvent.objects.create(kind=AuditEvent.Kind.SEARCHED, actor=otto, created_at=late - timedelta(hours=1))
    client = client_for(otto)

    def shown(**days: str) -> int:
        return len(_shown(client.get(TRAIL, {"kind": "searched", **days})))

    assert shown(date_from="2026-03-02", date_to="2026-03-02") == 1
    assert shown(date_from="2026-03-01", date_to="2026-03-01") == 1
    assert shown(date_to="2026-02-28") == 0
    assert shown(date_from="2026-03-01") == 2


def test_a_bad_filter_is_shown_not_applied_silently(otto: User) -> None:
    _events(2, actor=otto)
    response = client_for(otto).get(TRAIL, {"actor": "nobody@kontor.example"})

    assert "No one has this email address." in response.content.decode()
    assert len(_shown(response)) == 2


def test_keyset_pages_are_contiguous_and_cost_the_same_deep_in(
    otto: User,
    django_assert_num_queries: DjangoAssertNumQueries,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    _events(170, actor=otto)
    everything = list(AuditEvent.objects.order_by("-pk").values_list("pk", flat=True))
    client = client_for(otto)
    client.get(TRAIL)  # a first request may refresh the session; logs one look
    everything.insert(0, AuditEvent.objects.latest("pk").pk)

    with django_assert_max_num_queries(TRAIL_MAX_QUERIES) as first_page:
        first = client.get(TRAIL)
    shown = _shown(first)
    assert shown == everything[: trail.PAGE_SIZE]
    seen = list(shown)
    older = re.search(r'href="\?before=(\d+)" rel="next"', first.content.decode())
    while older:
        with django_assert_num_queries(len(first_page)):
            page = client.get(TRAIL, {"before": older.group(1)})
        seen += _shown(page)
        older = re.search(r'href="\?before=(\d+)" rel="next"', page.content.decode())
    assert seen == everything
    newer = re.search(r'href="\?after=(\d+)" rel="prev"', page.content.decode())
    assert newer is not None
    back = _shown(client.get(TRAIL, {"after": newer.group(1)}))
    assert back == everything[-len(_shown(page)) - trail.PAGE_SIZE : -len(_shown(page))]


def test_the_trail_query_count_does_not_grow_with_events_people_or_cases(
    otto: User,
    petra: User,
    django_assert_num_queries: DjangoAssertNumQueries,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    client = client_for(otto)
    client.get(TRAIL)
    with django_assert_max_num_queries(TRAIL_MAX_QUERIES) as sparse:
        client.get(TRAIL)

    for n in range(8):
        case = cases.case_open(actor=petra if n % 2 else otto, name=f"Case {n}", legal_basis="§ 147 AO")
        _events(6, actor=make_auditor(f"a{n}@kontor.example", f"Auditor {n}"), case=case)
    with django_assert_num_queries(len(sparse)):
        assert len(_shown(client.get(TRAIL))) == trail.PAGE_SIZE


def test_the_data_protection_officer_reads_and_exports_the_trail(otto: User) -> None:
    case = cases.case_open(actor=otto, name="Tax audit", legal_basis="§ 147 AO")
    dpo = make_dpo()
    client = client_for(dpo)

    page = client.get(TRAIL).content.decode()

    assert "Tax audit" in page
    assert reverse("compliance:case", args=[case.pk]) not in page  # no link to a page she cannot open
    assert client.get(EXPORT).status_code == 200
    assert set(AuditEvent.objects.filter(actor=dpo).values_list("kind", flat=True)) == {
        AuditEvent.Kind.AUDIT_LOG_VIEWED,
        AuditEvent.Kind.AUDIT_LOG_EXPORTED,
    }


def _lines(response: Any) -> list[dict[str, Any]]:
    body = b"".join(response.streaming_content).decode()
    assert body.endswith("\n")
    return [json.loads(line) for line in body.splitlines()]


def test_the_export_is_json_lines_with_every_event(otto: User, petra: User) -> None:
    case = cases.case_open(actor=otto, name="Tax audit „2026“", legal_basis="§ 147 AO")
    _events(1234, actor=petra, case=case)
    _events(2, kind=AuditEvent.Kind.SNAPSHOT)

    response = client_for(otto).get(EXPORT)

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("application/jsonl")
    assert response["Content-Disposition"].startswith('attachment; filename="audit-trail-')
    lines = _lines(response)
    exported = AuditEvent.objects.get(kind=AuditEvent.Kind.AUDIT_LOG_EXPORTED)
    assert [line["id"] for line in lines] == list(
        AuditEvent.objects.order_by("pk").values_list("pk", flat=True)
    )
    assert (
        lines[-1]["id"] == exported.pk and lines[-1]["ip"] == ADDRESS and lines[-1]["user_agent"] == BROWSER
    )
    opened = lines[0]
    assert opened["kind"] == "case_opened" and opened["kind_label"] == "Case opened"
    assert opened["actor"] == {"id": otto.pk, "email": otto.email, "name": "Otto Ortmann"}
    assert opened["case"] == {"id": case.pk, "name": "Tax audit „2026“"}
    assert opened["detail"]["legal_basis"] == "§ 147 AO"
    assert lines[1]["detail"] == {"query": "q0"} and lines[-2]["actor"] is None
    assert all(line["at"] for line in lines)
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.AUDIT_LOG_EXPORTED).count() == 1


def test_the_export_follows_the_filters(otto: User, petra: User) -> None:
    _events(3, actor=petra)
    _events(4, actor=otto)

    lines = _lines(client_for(otto).get(EXPORT, {"actor": petra.email}))

    assert len(lines) == 3 and {line["actor"]["email"] for line in lines} == {petra.email}
    assert (
        AuditEvent.objects.get(kind=AuditEvent.Kind.AUDIT_LOG_EXPORTED).detail["filters"]["actor"]
        == petra.email
    )


def test_the_export_streams_in_chunks_of_bounded_size(otto: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trail, "EXPORT_CHUNK", 7)
    _events(30, actor=otto)

    response: Any = client_for(otto).get(EXPORT)
    chunks = list(response.streaming_content)

    assert len(chunks) == 5  # 31 events (with the export's own) in sevens
    assert all(chunk.count(b"\n") <= 7 for chunk in chunks)


def test_under_asgi_the_export_is_pulled_chunk_by_chunk(otto: User, monkeypatch: pytest.MonkeyPatch) -> None:
    # Django would collect a sync iterator in full under ASGI (daphne).
    monkeypatch.setattr(trail, "EXPORT_CHUNK", 10)
    _events(25, actor=otto)
    client = AsyncClient(headers={"user-agent": BROWSER})
    client.force_login(otto)

    async def export() -> tuple[Any, list[bytes]]:
        response: Any = await client.get(EXPORT)
        return response, [chunk async for chunk in response.streaming_content]

    response, chunks = async_to_sync(export)()

    assert response.status_code == 200 and response.is_async
    assert len(chunks) == 3
    assert len(b"".join(chunks).decode().splitlines()) == 26


def test_audit_events_stay_as_written(otto: User) -> None:
    client: Client = client_for(otto)
    client.get(TRAIL)
    event = AuditEvent.objects.get()
    event.detail = {"forged": True}
    with pytest.raises(Exception, match="cannot be changed"):
        event.save()
