"""The daily seal over every chain head, and its anchors outside the database
(C6): a copy in the archive storage and an RFC 3161 timestamp from a local
``openssl ts`` authority."""

import base64
import io
import json
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import User
from compliance import archive_store, records, sealing, services, tasks
from compliance.models import GENESIS_HASH, AuditEvent, RecordContent, RetentionRecord, Seal
from compliance.verification import verify
from messenger import services as chat
from messenger.models import Conversation
from tests.guards import flush_guarded_database
from tests.tsa import TimestampAuthority, timestamp_authority

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TimestampAuthority]:
    with timestamp_authority(tmp_path_factory.mktemp("tsa")) as running:
        yield running


@pytest.fixture
def stamping(settings: Any, authority: TimestampAuthority) -> TimestampAuthority:
    """Seals are stamped by the local authority and checked against its CA."""
    settings.KONTOR_TSA_URL = authority.url
    settings.KONTOR_TSA_CA_FILE = str(authority.ca_file)
    return authority


def _archived(actor: User, conversation: Conversation, body: str) -> RetentionRecord:
    chat.message_send(actor=actor, conversation_id=conversation.pk, body=body)
    record = services.snapshot_conversation(conversation_id=conversation.pk).record
    assert record is not None
    return record


def _as_superuser(*statements: tuple[str, list[Any]]) -> None:
    """What a database superuser could do: switch the guards off and write.
    The test's rollback switches them on again (DDL is transactional on both)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending events block ALTER TABLE
            for table in (
                "compliance_recordcontent",
                "compliance_recordperson",
                "compliance_retentionrecord",
                "compliance_seal",
            ):
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        else:
            names = cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'compliance_%'"
            ).fetchall()
            for (name,) in names:
                cursor.execute(f"DROP TRIGGER {name}")
        for sql, params in statements:
            cursor.execute(sql, params)


def _two_chains(alice: User, charlie: User, dm: Conversation) -> tuple[Conversation, list[RetentionRecord]]:
    first = _archived(alice, dm, "Angebot: 1.200 EUR")
    second = _archived(alice, dm, "Lieferung am Montag")
    other = chat.direct_open(actor=alice, other_user_id=charlie.pk)
    third = _archived(alice, other, "Vertraulich: Rabatt 30 %")
    return other, [first, second, third]


def test_a_seal_names_every_chain_head_is_stamped_and_verifies(
    alice: User, charlie: User, dm: Conversation, stamping: TimestampAuthority
) -> None:
    other, (_, second, third) = _two_chains(alice, charlie, dm)
    asked = stamping.requests

    seal = sealing.seal_heads()

    payload = json.loads(seal.canonical_json)
    assert payload["heads"] == [
        {"conversation": dm.pk, "seq": 2, "sha256": second.sha256},
        {"conversation": other.pk, "seq": 1, "sha256": third.sha256},
    ]
    assert (payload["format"], payload["seq"], payload["previous_hash"]) == ("kontor.seal/1", 1, GENESIS_HASH)
    assert (payload["chains"], payload["records"], seal.chains) == (2, 3, 2)
    assert seal.sha256 == records.record_hash(seal.canonical_json.encode())
    # Anchored outside the database: a byte-identical copy and a token over its hash.
    assert archive_store.get(seal.storage_name) == seal.canonical_json.encode()
    assert stamping.requests == asked + 1
    assert seal.tsa_url == stamping.url
    token = sealing.token_response(base64.b64decode(seal.tsa_token))
    assert token.tst_info.message_imprint.message == bytes.fromhex(seal.sha256)
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.SEALED)
    assert event.detail == {"seq": 1, "sha256": seal.sha256, "chains": 2, "stamped": True}
    # The seals form their own chain.
    _archived(alice, other, "Nachtrag")
    following = sealing.seal_heads()
    assert (following.seq, following.previous_hash) == (2, seal.sha256)
    assert json.loads(following.canonical_json)["heads"][1]["seq"] == 2

    out = io.StringIO()
    call_command("verify_archive", stdout=out)
    assert "Archive intact: 2 chains, 4 records" in out.getvalue()
    assert "2 seals (2 with an RFC 3161 timestamp)" in out.getvalue()


def test_a_removed_chain_is_named_by_the_seal(
    alice: User, charlie: User, dm: Conversation, stamping: TimestampAuthority
) -> None:
    other, _ = _two_chains(alice, charlie, dm)
    sealing.seal_heads()
    in_chain = f"SELECT id FROM compliance_retentionrecord WHERE conversation_id = {other.pk}"
    _as_superuser(
        (f"DELETE FROM compliance_recordcontent WHERE record_id IN ({in_chain})", []),
        (f"DELETE FROM compliance_recordperson WHERE record_id IN ({in_chain})", []),
        ("DELETE FROM compliance_archivedmessage WHERE conversation_id = %s", [other.pk]),
        ("DELETE FROM compliance_retentionrecord WHERE conversation_id = %s", [other.pk]),
        ("DELETE FROM compliance_snapshotcursor WHERE conversation_id = %s", [other.pk]),
    )
    # Without the seal nothing is left to notice: every remaining chain is whole.
    assert verify(conversation_id=dm.pk).ok

    with pytest.raises(CommandError, match="BROKEN"):
        call_command("verify_archive", stdout=io.StringIO(), stderr=(err := io.StringIO()))

    assert (
        f"seal 1 (id {Seal.objects.get().pk}): conversation {other.pk}: the head it sealed" in err.getvalue()
    )
    assert "removed or rewritten" in err.getvalue()


def _rewrite_chain(conversation: Conversation, old: str, new: str) -> None:
    """Rewrite a whole chain consistently: content, hashes, links and cursor, and
    even a storage copy under each new name, so every check of the database and
    of the records passes."""
    statements: list[tuple[str, list[Any]]] = []
    previous = GENESIS_HASH
    for record in RetentionRecord.objects.filter(conversation=conversation).order_by("seq"):
        payload = json.loads(RecordContent.objects.get(record=record).canonical_json)
        payload["previous_hash"] = previous
        content = records.canonical_json(json.loads(json.dumps(payload).replace(old, new)))
        digest = records.record_hash(content)
        statements += [
            (
                "UPDATE compliance_retentionrecord SET sha256 = %s, hmac = %s, previous_hash = %s "
                "WHERE id = %s",
                [digest, records.record_hmac(content), previous, record.pk],
            ),
            (
                "UPDATE compliance_recordcontent SET canonical_json = %s WHERE record_id = %s",
                [content.decode(), record.pk],
            ),
        ]
        record.sha256 = digest
        archive_store.put(archive_store.record_name(record), content, record.retain_until)
        previous = digest
    statements.append(
        (
            "UPDATE compliance_snapshotcursor SET last_hash = %s WHERE conversation_id = %s",
            [previous, conversation.pk],
        )
    )
    _as_superuser(*statements)


def test_a_chain_rewritten_consistently_is_caught_by_the_seal(
    alice: User, charlie: User, dm: Conversation, stamping: TimestampAuthority
) -> None:
    other, _ = _two_chains(alice, charlie, dm)
    _archived(alice, other, "Zweite Nachricht")
    seal = sealing.seal_heads()

    _rewrite_chain(other, "Rabatt 30 %", "Rabatt 3 %")

    assert "Rabatt 3 %" in RecordContent.objects.get(record__conversation=other, record__seq=1).canonical_json
    assert verify(conversation_id=other.pk).ok  # hashes, links, cursor and record copies all agree
    report = verify()
    # (A careful superuser switches the guards back on; here they stay off.)
    assert _beyond_guards(report.problems) == [
        f"seal 1 (id {seal.pk}): conversation {other.pk}: the head it sealed, record 2 "
        f"({json.loads(seal.canonical_json)['heads'][1]['sha256']}), is no longer in the archive: "
        "the chain was removed or rewritten"
    ]


def _rewrite_seal(seal: Seal, change: dict[str, Any], token: bytes | None = None) -> None:
    """Rewrite a seal row consistently: new content, hash and HMAC (and a new
    token, when given)."""
    payload = {**json.loads(seal.canonical_json), **change}
    content = records.canonical_json(payload)
    digest = records.record_hash(content)
    token_sql, params = (
        ("", []) if token is None else (", tsa_token = %s", [base64.b64encode(token).decode()])
    )
    _as_superuser(
        (
            f"UPDATE compliance_seal SET canonical_json = %s, sha256 = %s, hmac = %s{token_sql} "
            "WHERE id = %s",
            [content.decode(), digest, records.record_hmac(content), *params, seal.pk],
        )
    )


def test_a_seal_rewritten_in_the_database_is_caught_by_its_copy_and_its_token(
    alice: User, charlie: User, dm: Conversation, stamping: TimestampAuthority
) -> None:
    other, _ = _two_chains(alice, charlie, dm)
    seal = sealing.seal_heads()
    forged_heads = [
        {**h, "sha256": "f" * 64} if h["conversation"] == other.pk else h
        for h in json.loads(seal.canonical_json)["heads"]
    ]

    _rewrite_seal(seal, {"heads": forged_heads})

    problems = verify().problems
    name = f"seal 1 (id {seal.pk})"
    assert any(p.startswith(name) and "copy in the archive storage" in p and "missing" in p for p in problems)
    assert any(p.startswith(name) and "not a valid signature over its hash" in p for p in problems)


def test_a_token_removed_from_the_database_is_caught_by_its_copy(
    alice: User, charlie: User, dm: Conversation, stamping: TimestampAuthority
) -> None:
    _two_chains(alice, charlie, dm)
    seal = sealing.seal_heads()
    assert archive_store.get(sealing.token_name(seal.storage_name)) == base64.b64decode(seal.tsa_token)

    _as_superuser(("UPDATE compliance_seal SET tsa_token = '', tsa_url = '' WHERE id = %s", [seal.pk]))

    assert f"seal 1 (id {seal.pk}): its RFC 3161 timestamp was removed from the database" in verify().problems


def test_a_backdated_seal_with_a_fresh_token_is_caught_by_the_token_time(
    alice: User, charlie: User, dm: Conversation, stamping: TimestampAuthority
) -> None:
    _two_chains(alice, charlie, dm)
    seal = sealing.seal_heads()
    sealed_at = datetime.fromisoformat(json.loads(seal.canonical_json)["sealed_at"])
    backdated = (sealed_at - timedelta(hours=3)).isoformat(timespec="milliseconds")
    content = records.canonical_json({**json.loads(seal.canonical_json), "sealed_at": backdated})

    _rewrite_seal(seal, {"sealed_at": backdated}, token=sealing.timestamp(content))

    problems = verify().problems
    name = f"seal 1 (id {seal.pk})"
    assert any(p.startswith(name) and "away from the seal's time" in p for p in problems)
    assert not any("not a valid signature" in p for p in problems)  # the token itself is genuine


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("failure", ["down", "untrusted"])
def test_a_failing_authority_still_yields_a_seal_and_tells_the_contacts(
    failure: str,
    alice: User,
    dm: Conversation,
    settings: Any,
    stamping: TimestampAuthority,
    tmp_path: Path,
    mailoutbox: list[Any],
) -> None:
    settings.KONTOR_COMPLIANCE_CONTACTS = ["compliance@kontor.example"]
    if failure == "down":
        settings.KONTOR_TSA_URL = f"http://127.0.0.1:{_closed_port()}/tsa"
    else:  # it answers, but signs with a certificate our CA never issued
        settings.KONTOR_TSA_CA_FILE = str(TimestampAuthority(tmp_path / "other", "Other").ca_file)
    record = _archived(alice, dm, "Angebot")

    seal = sealing.seal_heads()

    assert seal.tsa_token == "" and seal.tsa_url == ""
    assert json.loads(seal.canonical_json)["heads"] == [
        {"conversation": dm.pk, "seq": 1, "sha256": record.sha256}
    ]
    assert archive_store.get(seal.storage_name) == seal.canonical_json.encode()
    assert AuditEvent.objects.get(kind=AuditEvent.Kind.SEALED).detail["stamped"] is False
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["compliance@kontor.example"]
    assert "seal 1" in mailoutbox[0].body and "without an RFC 3161 timestamp" in mailoutbox[0].body
    # The next seal is stamped again once the authority answers.
    settings.KONTOR_TSA_URL, settings.KONTOR_TSA_CA_FILE = stamping.url, str(stamping.ca_file)
    assert sealing.seal_heads().tsa_token != ""
    report = verify()
    assert report.ok, report.problems
    assert (report.seals, report.stamped) == (2, 1)


def _beyond_guards(problems: list[str]) -> list[str]:
    """The problems besides the switched-off guards (which verify reports too)."""
    return [p for p in problems if not p.startswith("database guard")]


def _days_ago(days: int) -> str:
    if connection.vendor == "postgresql":
        return f"created_at - interval '{days} days'"
    return f"strftime('%Y-%m-%d %H:%M:%f', created_at, '-{days} days')"


def test_removing_the_newest_seals_shows_as_an_overdue_seal(alice: User, dm: Conversation) -> None:
    _archived(alice, dm, "first")
    sealing.seal_heads()
    later = _archived(alice, dm, "second")
    newest = sealing.seal_heads()
    # Three days pass: everything is sealed in time.
    _as_superuser(
        (f"UPDATE compliance_retentionrecord SET created_at = {_days_ago(3)}", []),
        (f"UPDATE compliance_seal SET created_at = {_days_ago(3)}", []),
    )
    assert _beyond_guards(verify().problems) == []  # (the guards stay off in this test)

    _as_superuser(("DELETE FROM compliance_seal WHERE id = %s", [newest.pk]))

    assert any(
        p.startswith(f"conversation {dm.pk}, record {later.seq}: not sealed since seal 1")
        for p in verify().problems
    )


def test_sealing_an_empty_archive_and_the_task(settings: Any) -> None:
    settings.KONTOR_TSA_URL = ""
    assert tasks.seal() == 1
    seal = Seal.objects.get()
    assert (json.loads(seal.canonical_json)["heads"], seal.chains, seal.tsa_token) == ([], 0, "")
    assert verify().ok


@pytest.fixture
def archive_wiped_afterwards() -> Iterator[None]:
    """A transactional test commits seals and audit events, which the database
    refuses to flush: afterwards the guards are lifted, the database emptied and
    the guards put back exactly as they were (``tests.guards``)."""
    yield
    flush_guarded_database()


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="concurrent sealers are PostgreSQL's case; SQLite admits one writer at a time",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_never_take_the_same_position(
    archive_wiped_afterwards: None, settings: Any, authority: TimestampAuthority
) -> None:
    settings.KONTOR_TSA_URL, settings.KONTOR_TSA_CA_FILE = authority.url, str(authority.ca_file)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(4):
                sealing.seal_heads()
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    runs = [threading.Thread(target=run) for _ in range(3)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(timeout=60)

    assert errors == []
    assert list(Seal.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, 13))
    report = verify()
    assert report.ok, report.problems
    assert (report.seals, report.stamped) == (12, 12)


def test_beat_runs_the_seal_daily() -> None:
    from django.conf import settings

    from config.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["compliance-seal"]
    assert (entry["task"], entry["schedule"]) == ("compliance.seal", 24 * 3600.0)
    assert "compliance.seal" in app.tasks
