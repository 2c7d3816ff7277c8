"""The one reader of the archive chain (``compliance.workspace.chain``) that
reconstruction and export share: records checked against their hash and
HMAC, membership replayed across gaps, files refused when altered."""

import io
from pathlib import Path
from typing import Any

import pytest

from accounts.models import User
from archive import services as files
from compliance import services
from compliance.models import RetentionRecord
from compliance.workspace import chain
from compliance.workspace.reconstruct import reconstruct
from messenger import services as chat
from messenger.models import Conversation
from tests.compliance.workspace.tamper import alter_archive_copy, without_guards

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("file_storage")]


def archive(conversation: Conversation) -> list[RetentionRecord]:
    written = []
    while (record := services.snapshot_conversation(conversation_id=conversation.pk).record) is not None:
        written.append(record)
    return written


def read_all(conversation: Conversation) -> list[chain.RecordRead]:
    return list(chain.chain_read(RetentionRecord.objects.filter(conversation_id=conversation.pk), chunk=1))


def test_an_intact_record_reads_as_intact(alice: User, dm: Conversation) -> None:
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Lieferung 500 Stück")
    record = archive(dm)[0]

    (read,) = read_all(dm)

    assert (read.ref.pk, read.ref.seq, read.ref.sha256) == (record.pk, 1, record.sha256)
    assert read.ref.intact and read.proven() == record.content.canonical_json.encode()
    assert read.ref.file == f"records/{dm.pk}/00000001-{record.sha256}.json"


def test_an_altered_record_is_named_and_its_content_refused(alice: User, dm: Conversation) -> None:
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Lieferung 500 Stück")
    record = archive(dm)[0]
    tampered = record.content.canonical_json.replace("500 Stück", "50 Stück")
    without_guards(
        "UPDATE compliance_recordcontent SET canonical_json = %s WHERE record_id = %s", [tampered, record.pk]
    )

    (read,) = read_all(dm)

    assert read.ref.readable and not read.ref.intact
    assert read.ref.problem == (
        f"Record 1 of conversation {dm.pk} does not match its hash: the archive may have been altered"
    )
    with pytest.raises(chain.RecordAltered, match="does not match its hash"):
        read.proven()


def test_a_record_whose_hmac_does_not_match_is_refused_and_marked(
    alice: User, dm: Conversation, settings: Any
) -> None:
    """A record rewritten consistently (content, hash, links) by someone
    without the key: only its HMAC gives it away. Reconstruction marks it."""
    settings.KONTOR_ARCHIVE_HMAC_KEY = "the company's key"
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Lieferung 500 Stück")
    archive(dm)
    settings.KONTOR_ARCHIVE_HMAC_KEY = "not the key the record was sealed with"

    (read,) = read_all(dm)
    result = reconstruct(dm.pk, None, check_chain=False)

    assert read.ref.problem.endswith("does not match its HMAC: the archive may have been altered")
    with pytest.raises(chain.RecordAltered, match="HMAC"):
        read.proven()
    assert [m.from_altered_record for m in result.messages] == [True]
    assert [r.intact for r in result.records] == [False]


def test_after_a_gap_the_members_are_the_capture_wound_back_over_the_record_s_events() -> None:
    people = {str(pk): {"id": pk, "name": name} for pk, name in ((1, "Alice"), (2, "Bob"), (3, "Charlie"))}
    payload = {"people": people, "members": [1, 2, 3]}
    added = {"type": "member_added", "subject": 3, "actor": 1, "data": {"role": "member"}}
    events = [{"type": "message", "actor": 1}, added]
    membership = chain.Membership()

    assert membership.arrive(2) == (1, 1)  # record 1 is not there
    assert membership.begin(2, payload, events) is True

    # Charlie was added in this record: not a member before its first event.
    assert list(membership.members) == [1, 2] and not membership.exact and membership.seeded_from == 2
    membership.apply(added, None)
    assert list(membership.members) == [1, 2, 3]
    assert membership.people.entry(3) == people["3"]
    assert membership.people.entry(9)["name"] == "Person 9" and membership.people.person(9).name == "Person 9"


def test_a_file_is_fetched_only_from_bytes_that_match_and_an_altered_copy_is_refused(
    alice: User, dm: Conversation, archive_storage: Path
) -> None:
    stored = files.file_store(upload=io.BytesIO(b"Rechnung 4711"), name="r.txt", uploader=alice)
    chat.message_send(actor=alice, conversation_id=dm.pk, body="Anbei", file_ids=[stored.pk])
    archive(dm)
    fetched = chain.file_fetch(stored.sha256)
    assert fetched.content is not None and fetched.content.read() == b"Rechnung 4711"
    assert fetched.source == "archive copy"
    fetched.close()

    alter_archive_copy(archive_storage, stored.sha256, b"Rechnung 4712")
    refused = chain.file_fetch(stored.sha256)

    # The file storage still has the true bytes; they do not stand in for the altered copy.
    assert (refused.content, refused.altered, refused.problem) == (None, True, chain.ALTERED_COPY)
