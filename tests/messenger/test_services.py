"""The messenger's writes: conversations, memberships, messages, reactions.

Each service is one transaction that checks access, refuses bad input without
changing anything, and journals what it did.
"""

import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from pytest_django import Settings

from accounts.models import User
from messenger import selectors, services
from messenger.errors import (
    BodyTooLong,
    ClientIdConflict,
    ConversationArchived,
    EditWindowClosed,
    Forbidden,
    Invalid,
    NotFound,
    RecipientInactive,
)
from messenger.models import Conversation, Event, Membership, Mention, Message, MessageRevision, Reaction
from tests.factories import make_user

pytestmark = pytest.mark.django_db

T = Event.Type


def last_event_id() -> int:
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


def journal_since(after: int) -> list[str]:
    return list(Event.objects.filter(id__gt=after).order_by("id").values_list("type", flat=True))


def active_member_ids(conversation_id: int) -> set[int]:
    return set(
        Membership.objects.filter(conversation_id=conversation_id, left_at__isnull=True).values_list(
            "user_id", flat=True
        )
    )


@pytest.fixture
def group(alice: User, bob: User) -> Conversation:
    return services.group_create(actor=alice, name="Launch", member_ids=[bob.pk])


@pytest.fixture
def channel(alice: User, bob: User) -> Conversation:
    return services.channel_create(actor=alice, name="general", member_ids=[bob.pk])


# --- Direct conversations ---------------------------------------------------


def test_direct_open_creates_one_conversation_for_the_pair(alice: User, bob: User) -> None:
    before = last_event_id()

    conversation = services.direct_open(actor=alice, other_user_id=bob.pk)

    assert conversation.kind == Conversation.Kind.DIRECT
    assert active_member_ids(conversation.pk) == {alice.pk, bob.pk}
    types = journal_since(before)
    assert types[0] == T.CONVERSATION_CREATED
    assert sorted(types[1:]) == sorted([T.MEMBER_JOINED, T.MEMBER_ADDED])


def test_direct_open_is_one_per_pair_in_both_directions(alice: User, bob: User) -> None:
    first = services.direct_open(actor=alice, other_user_id=bob.pk)
    before = last_event_id()

    again = services.direct_open(actor=alice, other_user_id=bob.pk)
    reverse = services.direct_open(actor=bob, other_user_id=alice.pk)

    assert again.pk == first.pk
    assert reverse.pk == first.pk
    assert Conversation.objects.filter(kind=Conversation.Kind.DIRECT).count() == 1
    assert journal_since(before) == []


def test_direct_open_that_loses_a_race_returns_the_winner(
    alice: User, bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both people open the DM at once: the second insert hits the unique key."""
    winner = services.direct_open(actor=alice, other_user_id=bob.pk)
    manager = Conversation.objects
    real_filter = manager.filter
    hidden: list[bool] = []

    def filter_before_the_winner_committed(*args: Any, **kwargs: Any) -> Any:
        # The loser's lookup ran before the winner's row was visible.
        if "direct_key" in kwargs and not hidden:
            hidden.append(True)
            return manager.none()
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(manager, "filter", filter_before_the_winner_committed)
    before = last_event_id()

    loser = services.direct_open(actor=bob, other_user_id=alice.pk)

    assert hidden == [True]
    assert loser.pk == winner.pk
    assert Conversation.objects.filter(kind=Conversation.Kind.DIRECT).count() == 1
    assert journal_since(before) == []


def test_direct_key_is_unique_in_the_database(dm: Conversation, alice: User) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Conversation.objects.create(kind=Conversation.Kind.DIRECT, direct_key=dm.direct_key, created_by=alice)


@pytest.mark.django_db(transaction=True)
def test_direct_open_from_both_sides_at_once_makes_one_conversation(alice: User, bob: User) -> None:
    barrier = threading.Barrier(2, timeout=10)
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def open_as(name: str, actor: User, other: User) -> None:
        try:
            barrier.wait()
            results[name] = services.direct_open(actor=actor, other_user_id=other.pk).pk
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=open_as, args=("alice", alice, bob)),
        threading.Thread(target=open_as, args=("bob", bob, alice)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    assert errors == []
    assert results["alice"] == results["bob"]
    assert Conversation.objects.filter(kind=Conversation.Kind.DIRECT).count() == 1
    assert Membership.objects.filter(conversation_id=results["alice"]).count() == 2


def test_direct_open_refuses_a_new_conversation_with_someone_who_left(alice: User) -> None:
    gone = make_user(email="gone@kontor.example", is_active=False)
    before = last_event_id()

    with pytest.raises(RecipientInactive):
        services.direct_open(actor=alice, other_user_id=gone.pk)

    assert not Conversation.objects.exists()
    assert journal_since(before) == []


def test_direct_open_with_an_unknown_person_is_not_found(alice: User) -> None:
    with pytest.raises(NotFound):
        services.direct_open(actor=alice, other_user_id=999_999)


# --- Groups and channels -----------------------------------------------------


def test_group_create_makes_the_creator_owner_and_adds_members(alice: User, bob: User, charlie: User) -> None:
    before = last_event_id()

    group = services.group_create(actor=alice, name="  Launch   team ", member_ids=[bob.pk, charlie.pk])

    assert group.kind == Conversation.Kind.GROUP
    assert group.name == "Launch team"
    roles = dict(Membership.objects.filter(conversation=group).values_list("user_id", "role"))
    assert roles == {alice.pk: "owner", bob.pk: "member", charlie.pk: "member"}
    assert journal_since(before) == [
        T.CONVERSATION_CREATED,
        T.MEMBER_JOINED,
        T.MEMBER_ADDED,
        T.MEMBER_ADDED,
    ]


def test_group_create_needs_another_person(alice: User) -> None:
    with pytest.raises(Invalid):
        services.group_create(actor=alice, name="Just me", member_ids=[alice.pk])

    assert not Conversation.objects.exists()


def test_group_create_refuses_people_who_left(alice: User) -> None:
    gone = make_user(email="gone@kontor.example", is_active=False)

    with pytest.raises(Invalid):
        services.group_create(actor=alice, name="x", member_ids=[gone.pk])

    assert not Conversation.objects.exists()
    assert not Event.objects.exists()


def test_channel_create_journals_and_makes_the_creator_owner(alice: User, bob: User) -> None:
    before = last_event_id()

    channel = services.channel_create(actor=alice, name="#Sales", topic=" Deals ", member_ids=[bob.pk])

    assert channel.kind == Conversation.Kind.CHANNEL
    assert channel.name == "Sales"
    assert channel.topic == "Deals"
    assert channel.is_private is False
    assert Membership.objects.get(conversation=channel, user=alice).role == Membership.Role.OWNER
    assert journal_since(before) == [T.CONVERSATION_CREATED, T.MEMBER_JOINED, T.MEMBER_ADDED]


@pytest.mark.parametrize("duplicate", ["general", "GENERAL", "#General", " general "])
def test_channel_names_are_unique_regardless_of_case(
    channel: Conversation, alice: User, duplicate: str
) -> None:
    count = Conversation.objects.count()
    before = last_event_id()

    with pytest.raises(Invalid):
        services.channel_create(actor=alice, name=duplicate)

    assert Conversation.objects.count() == count
    assert journal_since(before) == []


@pytest.mark.parametrize("name", ["", "   ", "#"])
def test_channel_needs_a_name(alice: User, name: str) -> None:
    with pytest.raises(Invalid):
        services.channel_create(actor=alice, name=name)

    assert not Conversation.objects.exists()


# --- Members -----------------------------------------------------------------


def test_members_add_gives_access(group: Conversation, alice: User, charlie: User) -> None:
    before = last_event_id()

    services.members_add(actor=alice, conversation_id=group.pk, user_ids=[charlie.pk])

    assert charlie.pk in active_member_ids(group.pk)
    services.message_send(actor=charlie, conversation_id=group.pk, body="hi all")
    assert journal_since(before) == [T.MEMBER_ADDED, T.MESSAGE]
    assert Event.objects.get(id__gt=before, type=T.MEMBER_ADDED).subject_id == charlie.pk


def test_members_add_of_a_member_changes_nothing(group: Conversation, alice: User, bob: User) -> None:
    before = last_event_id()

    services.members_add(actor=alice, conversation_id=group.pk, user_ids=[bob.pk])

    assert journal_since(before) == []


def test_outsider_cannot_add_members(group: Conversation, charlie: User) -> None:
    with pytest.raises(NotFound):
        services.members_add(actor=charlie, conversation_id=group.pk, user_ids=[charlie.pk])

    assert charlie.pk not in active_member_ids(group.pk)


def test_members_cannot_be_added_to_a_direct_conversation(
    dm: Conversation, alice: User, charlie: User
) -> None:
    with pytest.raises(Invalid):
        services.members_add(actor=alice, conversation_id=dm.pk, user_ids=[charlie.pk])


def test_owner_removes_a_member_who_then_loses_access(group: Conversation, alice: User, bob: User) -> None:
    sent = services.message_send(actor=alice, conversation_id=group.pk, body="before")
    before = last_event_id()

    services.member_remove(actor=alice, conversation_id=group.pk, user_id=bob.pk)

    assert journal_since(before) == [T.MEMBER_REMOVED]
    assert bob.pk not in active_member_ids(group.pk)
    with pytest.raises(NotFound):
        services.message_send(actor=bob, conversation_id=group.pk, body="still here?")
    with pytest.raises(NotFound):
        selectors.conversation_page(user=bob, conversation_id=group.pk)
    with pytest.raises(NotFound):
        services.reaction_set(actor=bob, message_id=sent.message.pk, emoji="👍")
    assert group.pk not in {item.conversation.pk for item in selectors.sidebar_for_user(user=bob)}
    assert journal_since(before) == [T.MEMBER_REMOVED]


def test_only_owners_remove_members(group: Conversation, alice: User, bob: User, charlie: User) -> None:
    services.members_add(actor=alice, conversation_id=group.pk, user_ids=[charlie.pk])
    before = last_event_id()

    with pytest.raises(Forbidden):
        services.member_remove(actor=bob, conversation_id=group.pk, user_id=charlie.pk)

    assert charlie.pk in active_member_ids(group.pk)
    assert journal_since(before) == []


def test_removing_yourself_is_leaving(group: Conversation, bob: User) -> None:
    before = last_event_id()

    services.member_remove(actor=bob, conversation_id=group.pk, user_id=bob.pk)

    assert bob.pk not in active_member_ids(group.pk)
    assert journal_since(before) == [T.MEMBER_LEFT]


def test_channel_join_of_a_public_channel(channel: Conversation, charlie: User) -> None:
    before = last_event_id()

    services.channel_join(actor=charlie, conversation_id=channel.pk)

    assert charlie.pk in active_member_ids(channel.pk)
    assert journal_since(before) == [T.MEMBER_JOINED]


def test_private_channel_cannot_be_joined(alice: User, charlie: User) -> None:
    private = services.channel_create(actor=alice, name="board", is_private=True)
    before = last_event_id()

    with pytest.raises(NotFound):
        services.channel_join(actor=charlie, conversation_id=private.pk)

    assert charlie.pk not in active_member_ids(private.pk)
    assert journal_since(before) == []


def test_groups_cannot_be_joined(group: Conversation, charlie: User) -> None:
    with pytest.raises(NotFound):
        services.channel_join(actor=charlie, conversation_id=group.pk)


def test_leaving_and_rejoining_a_public_channel(channel: Conversation, bob: User) -> None:
    before = last_event_id()

    services.conversation_leave(actor=bob, conversation_id=channel.pk)
    assert bob.pk not in active_member_ids(channel.pk)
    services.channel_join(actor=bob, conversation_id=channel.pk)

    assert bob.pk in active_member_ids(channel.pk)
    assert journal_since(before) == [T.MEMBER_LEFT, T.MEMBER_JOINED]


def test_direct_conversation_cannot_be_left(dm: Conversation, alice: User) -> None:
    before = last_event_id()

    with pytest.raises(Invalid):
        services.conversation_leave(actor=alice, conversation_id=dm.pk)

    assert alice.pk in active_member_ids(dm.pk)
    assert journal_since(before) == []


def test_last_owner_leaving_hands_ownership_to_the_oldest_member(
    alice: User, bob: User, charlie: User
) -> None:
    # charlie's membership row is older (smaller id) but bob joined earlier.
    group = services.group_create(actor=alice, name="Ops", member_ids=[charlie.pk])
    services.members_add(actor=alice, conversation_id=group.pk, user_ids=[bob.pk])
    now = timezone.now()
    Membership.objects.filter(conversation=group, user=bob).update(joined_at=now - timedelta(days=2))
    Membership.objects.filter(conversation=group, user=charlie).update(joined_at=now - timedelta(days=1))
    before = last_event_id()

    services.conversation_leave(actor=alice, conversation_id=group.pk)

    roles = dict(
        Membership.objects.filter(conversation=group, left_at__isnull=True).values_list("user_id", "role")
    )
    assert roles == {bob.pk: "owner", charlie.pk: "member"}
    assert journal_since(before) == [T.MEMBER_LEFT, T.ROLE_CHANGED]
    assert Event.objects.get(id__gt=before, type=T.ROLE_CHANGED).subject_id == bob.pk


def test_a_member_leaving_keeps_the_owner(group: Conversation, alice: User, bob: User) -> None:
    before = last_event_id()

    services.conversation_leave(actor=bob, conversation_id=group.pk)

    assert Membership.objects.get(conversation=group, user=alice).role == Membership.Role.OWNER
    assert journal_since(before) == [T.MEMBER_LEFT]


# --- Rename, topic, archive ----------------------------------------------------


def test_any_member_renames_a_group(group: Conversation, bob: User) -> None:
    before = last_event_id()

    services.conversation_rename(actor=bob, conversation_id=group.pk, name="Launch v2")

    group.refresh_from_db()
    assert group.name == "Launch v2"
    assert journal_since(before) == [T.RENAMED]


def test_channel_rename_is_for_owners(channel: Conversation, alice: User, bob: User) -> None:
    before = last_event_id()

    with pytest.raises(Forbidden):
        services.conversation_rename(actor=bob, conversation_id=channel.pk, name="random")
    services.conversation_rename(actor=alice, conversation_id=channel.pk, name="#company")

    channel.refresh_from_db()
    assert channel.name == "company"
    assert journal_since(before) == [T.RENAMED]


def test_channel_rename_to_a_taken_name_is_refused(channel: Conversation, alice: User) -> None:
    services.channel_create(actor=alice, name="random")

    with pytest.raises(Invalid):
        services.conversation_rename(actor=alice, conversation_id=channel.pk, name="RANDOM")

    channel.refresh_from_db()
    assert channel.name == "general"


def test_outsider_cannot_rename(group: Conversation, charlie: User) -> None:
    with pytest.raises(NotFound):
        services.conversation_rename(actor=charlie, conversation_id=group.pk, name="mine now")


def test_set_topic(channel: Conversation, bob: User) -> None:
    before = last_event_id()

    services.conversation_set_topic(actor=bob, conversation_id=channel.pk, topic="Company news")
    services.conversation_set_topic(actor=bob, conversation_id=channel.pk, topic="Company news")

    channel.refresh_from_db()
    assert channel.topic == "Company news"
    assert journal_since(before) == [T.TOPIC_CHANGED]


def test_archived_channel_refuses_messages(channel: Conversation, alice: User, bob: User) -> None:
    before = last_event_id()
    services.channel_archive(actor=alice, conversation_id=channel.pk)
    assert journal_since(before) == [T.ARCHIVED]
    before = last_event_id()

    with pytest.raises(ConversationArchived):
        services.message_send(actor=bob, conversation_id=channel.pk, body="anyone?")

    assert not Message.objects.filter(conversation=channel).exists()
    assert journal_since(before) == []


def test_only_owners_archive(channel: Conversation, bob: User) -> None:
    with pytest.raises(Forbidden):
        services.channel_archive(actor=bob, conversation_id=channel.pk)

    channel.refresh_from_db()
    assert channel.archived_at is None


def test_only_channels_are_archived(group: Conversation, alice: User) -> None:
    with pytest.raises(Invalid):
        services.channel_archive(actor=alice, conversation_id=group.pk)


# --- Sending -------------------------------------------------------------------


def test_send_numbers_messages_per_conversation(
    dm: Conversation, group: Conversation, alice: User, bob: User
) -> None:
    first = services.message_send(actor=alice, conversation_id=dm.pk, body="one")
    second = services.message_send(actor=bob, conversation_id=dm.pk, body="two")
    other = services.message_send(actor=alice, conversation_id=group.pk, body="elsewhere")
    third = services.message_send(actor=alice, conversation_id=dm.pk, body="three")

    assert [first.message.seq, second.message.seq, third.message.seq] == [1, 2, 3]
    assert other.message.seq == 1
    assert first.created and second.created and third.created
    assert first.event_id < second.event_id < other.event_id < third.event_id


def test_send_stores_the_message_its_first_revision_and_an_event(dm: Conversation, alice: User) -> None:
    before = last_event_id()

    sent = services.message_send(actor=alice, conversation_id=dm.pk, body="  Hello *there*  ")

    message = Message.objects.get()
    assert message.body == "Hello *there*"
    assert message.html == "<p>Hello <em>there</em></p>"
    revision = MessageRevision.objects.get()
    assert (revision.message_id, revision.number, revision.kind, revision.body) == (
        message.pk,
        1,
        "created",
        "Hello *there*",
    )
    assert journal_since(before) == [T.MESSAGE]
    event = Event.objects.get(pk=sent.event_id)
    assert (event.message_id, event.revision_id, event.actor_id) == (message.pk, revision.pk, alice.pk)


def test_send_is_idempotent_on_client_id(dm: Conversation, alice: User) -> None:
    client_id = uuid.uuid4()
    first = services.message_send(actor=alice, conversation_id=dm.pk, body="once", client_id=client_id)
    before = last_event_id()

    again = services.message_send(actor=alice, conversation_id=dm.pk, body="once", client_id=str(client_id))

    assert again.created is False
    assert again.message.pk == first.message.pk
    assert again.event_id == first.event_id
    assert Message.objects.count() == 1
    assert MessageRevision.objects.count() == 1
    assert Event.objects.filter(type=T.MESSAGE).count() == 1
    assert journal_since(before) == []


def test_client_ids_belong_to_their_author(dm: Conversation, alice: User, bob: User) -> None:
    client_id = uuid.uuid4()
    mine = services.message_send(actor=alice, conversation_id=dm.pk, body="same", client_id=client_id)

    theirs = services.message_send(actor=bob, conversation_id=dm.pk, body="same", client_id=client_id)

    assert theirs.created is True
    assert theirs.message.pk != mine.message.pk


def test_reused_client_id_with_another_body_is_refused(dm: Conversation, alice: User) -> None:
    client_id = uuid.uuid4()
    services.message_send(actor=alice, conversation_id=dm.pk, body="original", client_id=client_id)
    before = last_event_id()

    with pytest.raises(ClientIdConflict):
        services.message_send(actor=alice, conversation_id=dm.pk, body="different", client_id=client_id)

    assert list(Message.objects.values_list("body", flat=True)) == ["original"]
    assert MessageRevision.objects.count() == 1
    assert journal_since(before) == []


def test_reused_client_id_in_another_conversation_is_refused(
    dm: Conversation, group: Conversation, alice: User
) -> None:
    client_id = uuid.uuid4()
    services.message_send(actor=alice, conversation_id=dm.pk, body="same", client_id=client_id)

    with pytest.raises(ClientIdConflict):
        services.message_send(actor=alice, conversation_id=group.pk, body="same", client_id=client_id)

    assert not Message.objects.filter(conversation=group).exists()


def test_client_id_must_be_a_uuid(dm: Conversation, alice: User) -> None:
    with pytest.raises(Invalid):
        services.message_send(actor=alice, conversation_id=dm.pk, body="x", client_id="not-a-uuid")

    assert not Message.objects.exists()


def test_body_at_the_limit_is_accepted_and_one_over_is_refused(
    dm: Conversation, alice: User, settings: Settings
) -> None:
    settings.KONTOR_MESSAGE_MAX_CHARS = 200
    services.message_send(actor=alice, conversation_id=dm.pk, body="x" * 200)
    before = last_event_id()

    with pytest.raises(BodyTooLong):
        services.message_send(actor=alice, conversation_id=dm.pk, body="x" * 201)

    assert Message.objects.count() == 1
    assert journal_since(before) == []


def test_default_body_limit_is_ten_thousand_characters(dm: Conversation, alice: User) -> None:
    with pytest.raises(BodyTooLong):
        services.message_send(actor=alice, conversation_id=dm.pk, body="y" * 10_001)

    assert not Message.objects.exists()
    assert not MessageRevision.objects.exists()


@pytest.mark.parametrize("body", ["", "   ", "\n\t\n"])
def test_empty_body_is_refused(dm: Conversation, alice: User, body: str) -> None:
    before = last_event_id()

    with pytest.raises(Invalid):
        services.message_send(actor=alice, conversation_id=dm.pk, body=body)

    assert not Message.objects.exists()
    assert journal_since(before) == []
    dm.refresh_from_db()
    assert dm.last_seq == 0


def test_outsider_cannot_send(dm: Conversation, charlie: User) -> None:
    before = last_event_id()

    with pytest.raises(NotFound):
        services.message_send(actor=charlie, conversation_id=dm.pk, body="let me in")

    assert not Message.objects.exists()
    assert journal_since(before) == []


def test_sending_to_a_missing_conversation_is_not_found(alice: User) -> None:
    with pytest.raises(NotFound):
        services.message_send(actor=alice, conversation_id=999_999, body="hello?")


def test_reply_to_a_message_of_the_same_conversation(dm: Conversation, alice: User, bob: User) -> None:
    question = services.message_send(actor=alice, conversation_id=dm.pk, body="lunch?")

    answer = services.message_send(
        actor=bob, conversation_id=dm.pk, body="yes", reply_to_id=question.message.pk
    )

    assert answer.message.reply_to_id == question.message.pk


def test_reply_to_a_message_of_another_conversation_is_refused(
    dm: Conversation, alice: User, charlie: User
) -> None:
    elsewhere = services.direct_open(actor=alice, other_user_id=charlie.pk)
    secret = services.message_send(actor=alice, conversation_id=elsewhere.pk, body="secret")
    before = last_event_id()

    with pytest.raises(NotFound):
        services.message_send(actor=alice, conversation_id=dm.pk, body="re", reply_to_id=secret.message.pk)

    assert not Message.objects.filter(conversation=dm).exists()
    assert journal_since(before) == []


def test_message_to_a_partner_who_left_is_refused(dm: Conversation, alice: User, bob: User) -> None:
    User.objects.filter(pk=bob.pk).update(is_active=False)
    before = last_event_id()

    with pytest.raises(RecipientInactive):
        services.message_send(actor=alice, conversation_id=dm.pk, body="are you there?")

    assert not Message.objects.exists()
    assert journal_since(before) == []


def test_mentions_are_stored(group: Conversation, alice: User, bob: User) -> None:
    sent = services.message_send(actor=alice, conversation_id=group.pk, body="@bob and @channel: ship it")

    assert set(Mention.objects.filter(message=sent.message).values_list("user_id", flat=True)) == {bob.pk}
    assert sent.message.mentions_everyone is True


def test_a_non_member_cannot_be_mentioned(group: Conversation, alice: User, charlie: User) -> None:
    sent = services.message_send(actor=alice, conversation_id=group.pk, body="@charlie see this")

    assert not Mention.objects.filter(message=sent.message).exists()


# --- Editing and deleting -------------------------------------------------------


def test_edit_own_message_keeps_the_old_version(dm: Conversation, alice: User) -> None:
    sent = services.message_send(actor=alice, conversation_id=dm.pk, body="teh plan")
    before = last_event_id()

    edited = services.message_edit(actor=alice, message_id=sent.message.pk, body="the *plan*")

    assert edited.body == "the *plan*"
    assert edited.html == "<p>the <em>plan</em></p>"
    assert edited.edited_at is not None
    revisions = list(
        MessageRevision.objects.filter(message=sent.message).values_list("number", "kind", "body")
    )
    assert revisions == [(1, "created", "teh plan"), (2, "edited", "the *plan*")]
    assert journal_since(before) == [T.MESSAGE_EDITED]


def test_edit_with_the_same_body_changes_nothing(dm: Conversation, alice: User) -> None:
    sent = services.message_send(actor=alice, conversation_id=dm.pk, body="same")
    before = last_event_id()

    services.message_edit(actor=alice, message_id=sent.message.pk, body="same")

    assert MessageRevision.objects.count() == 1
    assert journal_since(before) == []


def test_editing_someone_elses_message_is_forbidden(dm: Conversation, alice: User, bob: User) -> None:
    sent = services.message_send(actor=alice, conversation_id=dm.pk, body="mine")
    before = last_event_id()

    with pytest.raises(Forbidden):
        services.message_edit(actor=bob, message_id=sent.message.pk, body="yours now")

    assert Message.objects.get().body == "mine"
    assert journal_since(before) == []


def test_outsider_cannot_edit(dm: Conversation, alice: User, charlie: User) -> None:
    sent = services.message_send(actor=alice, conversation_id=dm.pk, body="mine")

    with pytest.raises(NotFound):
        services.message_edit(actor=charlie, message_id=sent.message.pk, body="x")


def test_edit_after_the_window_is_refused(dm: Conversation, alice: User, settings: Settings) -> None:
    settings.KONTOR_EDIT_WINDOW_SECONDS = 60
    sent = services.message_send(actor=alice, conversation_id=dm.pk, body="old news")
    Message.objects.filter(pk=sent.message.pk).update(created_at=timezone.now() - timedelta(seconds=61))
    before = last_event_id()

    with pytest.raises(EditWindowClosed):
        services.message_edit(actor=alice, message_id=sent.message.pk, body="rewritten history")

    message = Message.objects.get()
    assert message.body == "old news"
    assert message.edited_at is None
    assert MessageRevision.objects.count() == 1
    assert journal_since(before) == []


def test_edit_inside_the_window_is_allowed(dm: Conversation, alice: User, settings: Settings) -> None:
    settings.KONTOR_EDIT_WINDOW_SECONDS = 60
    sent = services.message_send(actor=alice, conversation_id=dm.pk, body="typo")
    Message.objects.filter(pk=sent.message.pk).update(created_at=timezone.now() - timedelta(seconds=30))

    services.message_edit(actor=alice, message_id=sent.message.pk, body="fixed")

    assert Message.objects.get().body == "fixed"


def test_delete_leaves_a_tombstone_and_the_journal_keeps_every_version(dm: Conversation, alice: User) -> None:
    sent = services.message_send(actor=alice, conversation_id=dm.pk, body="v1")
    services.message_edit(actor=alice, message_id=sent.message.pk, body="v2")
    services.message_edit(actor=alice, message_id=sent.message.pk, body="v3 @channel")
    before = last_event_id()

    services.message_delete(actor=alice, message_id=sent.message.pk)

    message = Message.objects.get()
    assert message.deleted_at is not None
    assert (message.body, message.html, message.mentions_everyone) == ("", "", False)
    revisions = list(MessageRevision.objects.filter(message=message).values_list("kind", "body"))
    assert revisions == [
        ("created", "v1"),
        ("edited", "v2"),
        ("edited", "v3 @channel"),
        ("deleted", "v3 @channel"),
    ]
    assert journal_since(before) == [T.MESSAGE_DELETED]


def test_deleted_message_cannot_be_edited_or_deleted_again(dm: Conversation, alice: User) -> None:
    sent = services.message_send(actor=alice, conversation_id=dm.pk, body="oops")
    services.message_delete(actor=alice, message_id=sent.message.pk)
    before = last_event_id()

    with pytest.raises(Invalid):
        services.message_edit(actor=alice, message_id=sent.message.pk, body="back")
    with pytest.raises(Invalid):
        services.message_delete(actor=alice, message_id=sent.message.pk)

    assert journal_since(before) == []


def test_deleting_someone_elses_message_is_forbidden(dm: Conversation, alice: User, bob: User) -> None:
    sent = services.message_send(actor=alice, conversation_id=dm.pk, body="keep me")

    with pytest.raises(Forbidden):
        services.message_delete(actor=bob, message_id=sent.message.pk)

    assert Message.objects.get().deleted_at is None


# --- Reactions, read state, mute -------------------------------------------------


def test_reactions_add_and_remove_idempotently(dm: Conversation, alice: User, bob: User) -> None:
    sent = services.message_send(actor=alice, conversation_id=dm.pk, body="ship it")
    before = last_event_id()

    assert services.reaction_set(actor=bob, message_id=sent.message.pk, emoji="👍") is True
    assert services.reaction_set(actor=bob, message_id=sent.message.pk, emoji="👍") is False
    assert Reaction.objects.filter(message=sent.message).count() == 1
    assert services.reaction_set(actor=bob, message_id=sent.message.pk, emoji="👍", present=False) is True
    assert services.reaction_set(actor=bob, message_id=sent.message.pk, emoji="👍", present=False) is False

    assert not Reaction.objects.exists()
    assert journal_since(before) == [T.REACTION_ADDED, T.REACTION_REMOVED]


def test_shortcode_reactions_are_accepted(dm: Conversation, bob: User, alice: User) -> None:
    sent = services.message_send(actor=alice, conversation_id=dm.pk, body="ship it")

    assert services.reaction_set(actor=bob, message_id=sent.message.pk, emoji=":tada:") is True


@pytest.mark.parametrize("emoji", ["", "  ", "lol", "<b>", "👍 👍", "x" * 40, ":"])
def test_invalid_reactions_are_refused(dm: Conversation, alice: User, bob: User, emoji: str) -> None:
    sent = services.message_send(actor=alice, conversation_id=dm.pk, body="hi")
    before = last_event_id()

    with pytest.raises(Invalid):
        services.reaction_set(actor=bob, message_id=sent.message.pk, emoji=emoji)

    assert not Reaction.objects.exists()
    assert journal_since(before) == []


def test_outsider_cannot_react(dm: Conversation, alice: User, charlie: User) -> None:
    sent = services.message_send(actor=alice, conversation_id=dm.pk, body="hi")

    with pytest.raises(NotFound):
        services.reaction_set(actor=charlie, message_id=sent.message.pk, emoji="👍")

    assert not Reaction.objects.exists()


def test_mark_read_only_moves_forward(dm: Conversation, alice: User, bob: User) -> None:
    messages = [
        services.message_send(actor=alice, conversation_id=dm.pk, body=f"m{i}").message for i in range(4)
    ]

    assert services.conversation_mark_read(actor=bob, conversation_id=dm.pk, message_id=messages[2].pk) == 3
    assert services.conversation_mark_read(actor=bob, conversation_id=dm.pk, message_id=messages[0].pk) == 3
    assert Membership.objects.get(conversation=dm, user=bob).last_read_seq == 3
    assert services.conversation_mark_read(actor=bob, conversation_id=dm.pk) == 4
    assert Membership.objects.get(conversation=dm, user=bob).last_read_seq == 4


def test_mark_read_with_a_message_of_another_conversation_is_not_found(
    dm: Conversation, group: Conversation, alice: User, bob: User
) -> None:
    elsewhere = services.message_send(actor=alice, conversation_id=group.pk, body="x")

    with pytest.raises(NotFound):
        services.conversation_mark_read(actor=bob, conversation_id=dm.pk, message_id=elsewhere.message.pk)


def test_outsider_cannot_mark_read(dm: Conversation, charlie: User) -> None:
    with pytest.raises(NotFound):
        services.conversation_mark_read(actor=charlie, conversation_id=dm.pk)


def test_mute_and_unmute(group: Conversation, bob: User) -> None:
    services.membership_set_muted(actor=bob, conversation_id=group.pk, muted=True)
    assert Membership.objects.get(conversation=group, user=bob).is_muted is True
    assert [item.is_muted for item in selectors.sidebar_for_user(user=bob)] == [True]

    services.membership_set_muted(actor=bob, conversation_id=group.pk, muted=False)

    assert Membership.objects.get(conversation=group, user=bob).is_muted is False


def test_outsider_cannot_mute(group: Conversation, charlie: User) -> None:
    with pytest.raises(NotFound):
        services.membership_set_muted(actor=charlie, conversation_id=group.pk, muted=True)


def test_deactivated_member_can_do_nothing(group: Conversation, alice: User, bob: User) -> None:
    sent = services.message_send(actor=alice, conversation_id=group.pk, body="hi")
    User.objects.filter(pk=bob.pk).update(is_active=False)
    bob.refresh_from_db()
    attempts: list[Callable[[], object]] = [
        lambda: services.message_send(actor=bob, conversation_id=group.pk, body="x"),
        lambda: services.reaction_set(actor=bob, message_id=sent.message.pk, emoji="👍"),
        lambda: services.conversation_mark_read(actor=bob, conversation_id=group.pk),
    ]

    for attempt in attempts:
        with pytest.raises(NotFound):
            attempt()
