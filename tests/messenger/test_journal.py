"""The journal is append-only, its ids follow commit order, and nothing leaves
the database before the change is committed."""

import asyncio
import json
import threading
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import IntegrityError, connection, transaction

from accounts.models import User
from messenger import events, services
from messenger.models import Conversation, Event, MessageRevision
from tests.messenger.conftest import Socket, open_socket


@pytest.fixture
def sent(alice: User, bob: User) -> services.Sent:
    conversation = services.direct_open(actor=alice, other_user_id=bob.pk)
    return services.message_send(actor=alice, conversation_id=conversation.pk, body="the original")


# --- The database refuses changes ---------------------------------------------


@pytest.mark.django_db
def test_event_cannot_be_updated_through_the_orm(sent: services.Sent, charlie: User) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.filter(pk=sent.event_id).update(data={"forged": True})
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.filter(pk=sent.event_id).update(actor=charlie)
    with pytest.raises(IntegrityError), transaction.atomic():
        event = Event.objects.get(pk=sent.event_id)
        event.type = Event.Type.MESSAGE_DELETED
        event.save()

    event = Event.objects.get(pk=sent.event_id)
    assert (event.type, event.data, event.actor_id) == (Event.Type.MESSAGE, {}, sent.message.author_id)


@pytest.mark.django_db
def test_event_cannot_be_updated_with_raw_sql(sent: services.Sent, charlie: User) -> None:
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE messenger_event SET type = %s WHERE id = %s", ["archived", sent.event_id])
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE messenger_event SET actor_id = %s", [charlie.pk])

    assert Event.objects.get(pk=sent.event_id).type == Event.Type.MESSAGE
    assert not Event.objects.filter(actor=charlie).exists()


@pytest.mark.django_db
def test_message_revision_cannot_be_updated_through_the_orm(sent: services.Sent) -> None:
    revision = MessageRevision.objects.get(message=sent.message)

    with pytest.raises(IntegrityError), transaction.atomic():
        MessageRevision.objects.filter(pk=revision.pk).update(body="rewritten history")
    with pytest.raises(IntegrityError), transaction.atomic():
        revision.body = "rewritten history"
        revision.save()

    assert MessageRevision.objects.get(pk=revision.pk).body == "the original"


@pytest.mark.django_db
def test_message_revision_cannot_be_updated_with_raw_sql(sent: services.Sent) -> None:
    revision = MessageRevision.objects.get(message=sent.message)

    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messenger_messagerevision SET body = %s WHERE id = %s", ["forged", revision.pk]
        )
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE messenger_messagerevision SET kind = 'deleted'")

    revision.refresh_from_db()
    assert (revision.body, revision.kind) == ("the original", "created")


@pytest.mark.django_db
def test_edits_and_deletes_add_revisions_instead_of_changing_them(sent: services.Sent, alice: User) -> None:
    first = MessageRevision.objects.get(message=sent.message)

    services.message_edit(actor=alice, message_id=sent.message.pk, body="second thoughts")
    services.message_delete(actor=alice, message_id=sent.message.pk)

    first.refresh_from_db()
    assert (first.number, first.kind, first.body) == (1, "created", "the original")
    assert MessageRevision.objects.filter(message=sent.message).count() == 3


# --- Ids follow commit order -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_event_ids_increase_in_commit_order(alice: User, bob: User, charlie: User) -> None:
    """A writer that started later must not commit a smaller-looking future.

    Resuming is "every event after id N": if a larger id could commit before a
    smaller one, a client that saw the larger one would never see the smaller.
    """
    first = services.direct_open(actor=alice, other_user_id=bob.pk)
    second = services.direct_open(actor=alice, other_user_id=charlie.pk)
    inside = threading.Event()
    release = threading.Event()
    commits: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    record = threading.Lock()

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                event_id = services.message_send(actor=alice, conversation_id=first.pk, body="slow").event_id
                inside.set()
                release.wait(10)
            with record:
                commits.append(("slow", event_id))
        except BaseException as error:  # reported in the test's thread
            errors.append(error)
            inside.set()
        finally:
            connection.close()

    def quick_writer() -> None:
        try:
            event_id = services.message_send(actor=charlie, conversation_id=second.pk, body="quick").event_id
            with record:
                commits.append(("quick", event_id))
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    slow = threading.Thread(target=slow_writer)
    slow.start()
    assert inside.wait(10)
    quick = threading.Thread(target=quick_writer)
    quick.start()
    time.sleep(0.3)
    # Still waiting: it cannot commit a journal row while the slow one is open.
    quick_waited = quick.is_alive()
    release.set()
    slow.join(20)
    quick.join(20)

    assert errors == []
    assert quick_waited
    # The quick writer had to wait for the slow one's commit, so its event,
    # committed later, has the larger id. (The order of the two appends to
    # ``commits`` after their commits is itself a race, so it is not compared.)
    ids = dict(commits)
    assert set(ids) == {"slow", "quick"}
    assert ids["slow"] < ids["quick"]


# --- Broadcasts only on commit -----------------------------------------------------


@pytest.mark.django_db
def test_broadcast_waits_for_the_commit(
    alice: User,
    bob: User,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    conversation = services.direct_open(actor=alice, other_user_id=bob.pk)
    broadcasts: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(events, "_send", lambda group, message: broadcasts.append((group, message)))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        sent = services.message_send(actor=alice, conversation_id=conversation.pk, body="after commit")
        assert broadcasts == []

    assert broadcasts == []
    assert callbacks
    for callback in callbacks:
        callback()
    assert [group for group, _ in broadcasts] == [f"conv.{conversation.pk}"]
    # The frame travels encoded, once for every socket.
    payload = json.loads(broadcasts[0][1]["text"])
    assert (payload["type"], payload["event"], payload["message"]["body"]) == (
        "message",
        sent.event_id,
        "after commit",
    )


@pytest.mark.django_db
def test_a_rolled_back_change_is_never_broadcast(
    alice: User, bob: User, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    conversation = services.direct_open(actor=alice, other_user_id=bob.pk)
    broadcasts: list[str] = []
    monkeypatch.setattr(events, "_send", lambda group, message: broadcasts.append(group))

    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                services.message_send(actor=alice, conversation_id=conversation.pk, body="never")
                raise RuntimeError("the request failed later")
        except RuntimeError:
            pass

    assert broadcasts == []
    assert not Conversation.objects.get(pk=conversation.pk).messages.exists()


async def _settle(socket: Socket) -> None:
    """Read whatever arrives right after connecting (hello, presence)."""
    await socket.receive_type("hello")
    while not await socket.nothing(0.2):
        await socket.receive()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_channel_layer")
def test_socket_receives_nothing_before_the_transaction_commits(alice: User, bob: User) -> None:
    conversation = services.direct_open(actor=alice, other_user_id=bob.pk)
    inside = threading.Event()
    release = threading.Event()
    event_ids: list[int] = []

    def write_and_wait() -> None:
        try:
            with transaction.atomic():
                sent = services.message_send(actor=alice, conversation_id=conversation.pk, body="held back")
                event_ids.append(sent.event_id)
                inside.set()
                release.wait(10)
        finally:
            inside.set()
            connection.close()

    async def scenario() -> None:
        _, b = await open_socket(bob)
        await _settle(b)
        writer = asyncio.ensure_future(sync_to_async(write_and_wait, thread_sensitive=False)())
        assert await asyncio.to_thread(inside.wait, 10)
        assert event_ids, "the writer failed"

        assert await b.nothing(0.5)
        release.set()
        frame = await b.receive_type("message")
        assert (frame["event"], frame["message"]["body"]) == (event_ids[0], "held back")
        await writer
        await b.close()

    asyncio.run(scenario())
