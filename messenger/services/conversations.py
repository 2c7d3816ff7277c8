"""Writes to conversations and memberships. One transaction each; every change
is journaled and broadcast on commit."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest, Now

from accounts.models import User
from messenger.errors import ConversationArchived, Forbidden, Invalid, NotFound, RecipientInactive
from messenger.events import conversation_group, notify_on_commit, user_group
from messenger.models import Conversation, Event, Membership, Message
from messenger.permissions import access_conversation, access_membership, access_public_channel
from messenger.services._journal import append

NAME_MAX = 80
TOPIC_MAX = 250


def _clean_name(name: str, *, required: bool) -> str:
    name = " ".join(name.split())
    if required and not name:
        raise Invalid("Give it a name.")
    if len(name) > NAME_MAX:
        raise Invalid(f"Names are limited to {NAME_MAX} characters.")
    return name


def _active_users(user_ids: Iterable[int]) -> list[User]:
    ids = {int(i) for i in user_ids}
    users = list(User.objects.filter(pk__in=ids, is_active=True))
    if len(users) != len(ids):
        raise Invalid("Some of these people do not exist or have left the company.")
    return users


def _add_member(
    conversation: Conversation, actor: User, user: User, *, role: str = Membership.Role.MEMBER
) -> Membership:
    membership, created = Membership.objects.get_or_create(
        conversation=conversation, user=user, defaults={"role": role}
    )
    if not created:
        if membership.left_at is None:
            return membership
        Membership.objects.filter(pk=membership.pk).update(left_at=None, joined_at=Now(), role=role)
        membership.refresh_from_db()
    type_ = Event.Type.MEMBER_JOINED if user == actor else Event.Type.MEMBER_ADDED
    data: dict[str, object] = {"role": membership.role}
    if user.is_external:
        data["external"] = True
    append(conversation, type_, actor, subject=user, data=data)
    return membership


def _ensure_owner_remains(conversation: Conversation, actor: User) -> None:
    """Hand ownership on when the last owner goes: a conversation never lacks one."""
    active = Membership.objects.filter(conversation=conversation, left_at__isnull=True)
    if active.filter(role=Membership.Role.OWNER).exists():
        return
    successor = active.order_by("joined_at", "pk").select_related("user").first()
    if successor is None:
        return
    Membership.objects.filter(pk=successor.pk).update(role=Membership.Role.OWNER)
    append(conversation, Event.Type.ROLE_CHANGED, actor, subject=successor.user, data={"role": "owner"})


def _require_open(conversation: Conversation) -> None:
    if conversation.archived_at is not None:
        raise ConversationArchived("This channel is archived: it can be read but not changed.")


@transaction.atomic
def direct_open(*, actor: User, other_user_id: int) -> Conversation:
    """Start, or reopen, the one direct conversation between two people."""
    other = User.objects.filter(pk=other_user_id).first()
    if other is None:
        raise NotFound("person")
    low, high = sorted((actor.pk, other.pk))
    key = f"{low}:{high}"
    existing = Conversation.objects.filter(direct_key=key).first()
    if existing is not None:
        return existing
    if not other.is_active:
        raise RecipientInactive(f"{other} has left the company and cannot receive messages.")
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                kind=Conversation.Kind.DIRECT, direct_key=key, created_by=actor
            )
    except IntegrityError:
        # Both people opened it at the same moment: use the one that won.
        return Conversation.objects.get(direct_key=key)
    append(conversation, Event.Type.CONVERSATION_CREATED, actor, data={"kind": "direct"})
    for person in {actor, other}:
        _add_member(conversation, actor, person)
    return conversation


@transaction.atomic
def group_create(*, actor: User, name: str, member_ids: Iterable[int]) -> Conversation:
    members = [u for u in _active_users(member_ids) if u != actor]
    if not members:
        raise Invalid("Add at least one other person to the group.")
    conversation = Conversation.objects.create(
        kind=Conversation.Kind.GROUP, name=_clean_name(name, required=False), created_by=actor
    )
    append(
        conversation,
        Event.Type.CONVERSATION_CREATED,
        actor,
        data={"kind": "group", "name": conversation.name},
    )
    _add_member(conversation, actor, actor, role=Membership.Role.OWNER)
    for person in members:
        _add_member(conversation, actor, person)
    return conversation


@transaction.atomic
def channel_create(
    *, actor: User, name: str, topic: str = "", is_private: bool = False, member_ids: Iterable[int] = ()
) -> Conversation:
    name = _clean_name(name.lstrip("#"), required=True)
    if Conversation.objects.filter(kind=Conversation.Kind.CHANNEL, name__iexact=name).exists():
        raise Invalid(f"A channel named #{name} exists already.")
    topic = _clean_topic(topic)
    conversation = Conversation.objects.create(
        kind=Conversation.Kind.CHANNEL, name=name, topic=topic, is_private=is_private, created_by=actor
    )
    append(
        conversation,
        Event.Type.CONVERSATION_CREATED,
        actor,
        data={"kind": "channel", "name": name, "topic": topic, "private": is_private},
    )
    _add_member(conversation, actor, actor, role=Membership.Role.OWNER)
    for person in _active_users(member_ids):
        _add_member(conversation, actor, person)
    return conversation


def _clean_topic(topic: str) -> str:
    topic = topic.strip()
    if len(topic) > TOPIC_MAX:
        raise Invalid(f"Topics are limited to {TOPIC_MAX} characters.")
    return topic


@transaction.atomic
def members_add(*, actor: User, conversation_id: int, user_ids: Iterable[int]) -> list[Membership]:
    conversation = access_conversation(actor, conversation_id, for_update=True)
    _require_open(conversation)
    if conversation.is_direct:
        raise Invalid("A direct conversation is between two people; start a group instead.")
    return [_add_member(conversation, actor, person) for person in _active_users(user_ids)]


@transaction.atomic
def member_remove(*, actor: User, conversation_id: int, user_id: int) -> None:
    conversation = access_conversation(actor, conversation_id, for_update=True)
    _require_open(conversation)
    if user_id == actor.pk:
        _leave(conversation, actor)
        return
    own = Membership.objects.get(conversation=conversation, user=actor)
    if own.role != Membership.Role.OWNER:
        raise Forbidden("Only an owner can remove people.")
    membership = Membership.objects.filter(
        conversation=conversation, user_id=user_id, left_at__isnull=True
    ).first()
    if membership is None:
        raise NotFound("member")
    Membership.objects.filter(pk=membership.pk).update(left_at=Now())
    append(conversation, Event.Type.MEMBER_REMOVED, actor, subject=membership.user)


@transaction.atomic
def channel_join(*, actor: User, conversation_id: int) -> Membership:
    conversation = access_public_channel(actor, conversation_id)
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    _require_open(conversation)
    return _add_member(conversation, actor, actor)


@transaction.atomic
def conversation_leave(*, actor: User, conversation_id: int) -> None:
    conversation = access_conversation(actor, conversation_id, for_update=True)
    _leave(conversation, actor)


def _leave(conversation: Conversation, actor: User) -> None:
    if conversation.is_direct:
        raise Invalid("You cannot leave a direct conversation; mute it instead.")
    Membership.objects.filter(conversation=conversation, user=actor).update(left_at=Now())
    append(conversation, Event.Type.MEMBER_LEFT, actor, subject=actor)
    _ensure_owner_remains(conversation, actor)


@transaction.atomic
def conversation_rename(*, actor: User, conversation_id: int, name: str) -> Conversation:
    conversation = access_conversation(actor, conversation_id, for_update=True)
    _require_open(conversation)
    if conversation.is_direct:
        raise Invalid("Direct conversations have no name.")
    name = _clean_name(name.lstrip("#"), required=conversation.is_channel)
    if conversation.is_channel:
        _require_owner(conversation, actor)
        taken = Conversation.objects.filter(kind=Conversation.Kind.CHANNEL, name__iexact=name)
        if taken.exclude(pk=conversation.pk).exists():
            raise Invalid(f"A channel named #{name} exists already.")
    if name == conversation.name:
        return conversation
    conversation.name = name
    conversation.save(update_fields=["name"])
    append(conversation, Event.Type.RENAMED, actor, data={"name": name})
    return conversation


@transaction.atomic
def conversation_set_topic(*, actor: User, conversation_id: int, topic: str) -> Conversation:
    conversation = access_conversation(actor, conversation_id, for_update=True)
    _require_open(conversation)
    topic = _clean_topic(topic)
    if topic == conversation.topic:
        return conversation
    conversation.topic = topic
    conversation.save(update_fields=["topic"])
    append(conversation, Event.Type.TOPIC_CHANGED, actor, data={"topic": topic})
    return conversation


def _require_owner(conversation: Conversation, actor: User) -> None:
    if not Membership.objects.filter(
        conversation=conversation, user=actor, role=Membership.Role.OWNER, left_at__isnull=True
    ).exists():
        raise Forbidden("Only an owner can do this.")


@transaction.atomic
def channel_archive(*, actor: User, conversation_id: int) -> Conversation:
    conversation = access_conversation(actor, conversation_id, for_update=True)
    if not conversation.is_channel:
        raise Invalid("Only channels can be archived.")
    _require_open(conversation)
    _require_owner(conversation, actor)
    Conversation.objects.filter(pk=conversation.pk).update(archived_at=Now())
    conversation.refresh_from_db(fields=["archived_at"])
    append(conversation, Event.Type.ARCHIVED, actor)
    return conversation


@transaction.atomic
def membership_set_muted(*, actor: User, conversation_id: int, muted: bool) -> Membership:
    membership = access_membership(actor, conversation_id)
    if membership.is_muted != muted:
        membership.is_muted = muted
        membership.save(update_fields=["is_muted"])
    return membership


@transaction.atomic
def conversation_mark_read(*, actor: User, conversation_id: int, message_id: int | None = None) -> int:
    """Mark the conversation read up to a message (or all of it); returns the read sequence.

    Read markers only move forward. Others learn of it unless the reader
    switched read receipts off; the reader's own other tabs always do.
    """
    membership = access_membership(actor, conversation_id)
    if message_id is None:
        seq = membership.conversation.last_seq
    else:
        found = Message.objects.filter(pk=message_id, conversation_id=conversation_id).values("seq").first()
        if found is None:
            raise NotFound("message")
        seq = found["seq"]
    if seq <= membership.last_read_seq:
        return membership.last_read_seq
    Membership.objects.filter(pk=membership.pk).update(last_read_seq=Greatest(F("last_read_seq"), seq))
    payload = {"type": "read", "conversation": conversation_id, "user": actor.pk, "seq": seq}
    # The reader's own tabs are in both groups: one send reaches them either way.
    group = conversation_group(conversation_id) if actor.send_read_receipts else user_group(actor.pk)
    notify_on_commit(group, "read.receipt", payload)
    return seq


# --- Offboarding (called by accounts.offboarding inside its transaction) -------


@dataclass(frozen=True)
class Departure:
    """What offboarding did to one conversation of the leaver."""

    conversation_id: int
    kind: str
    name: str
    was_owner: bool
    # Who became owner because the leaver went (None: not an owner, a direct
    # conversation, or another owner remains).
    new_owner_id: int | None
    event_id: int


def _hand_over(conversation: Conversation, actor: User, leaver: User, successor: User | None) -> int | None:
    others = Membership.objects.filter(conversation=conversation, left_at__isnull=True).exclude(user=leaver)
    if others.filter(role=Membership.Role.OWNER).exists():
        return None
    if successor is not None:
        current = others.filter(user=successor).first()
        if current is not None:
            Membership.objects.filter(pk=current.pk).update(role=Membership.Role.OWNER)
            append(
                conversation,
                Event.Type.ROLE_CHANGED,
                actor,
                subject=successor,
                data={"role": "owner", "reason": "offboarding"},
            )
        else:
            _add_member(conversation, actor, successor, role=Membership.Role.OWNER)
        return successor.pk
    heir = others.filter(user__is_active=True).order_by("joined_at", "pk").select_related("user").first()
    if heir is None:
        raise Invalid(f"Nobody else is in {conversation} to own it: choose a successor.")
    Membership.objects.filter(pk=heir.pk).update(role=Membership.Role.OWNER)
    append(
        conversation,
        Event.Type.ROLE_CHANGED,
        actor,
        subject=heir.user,
        data={"role": "owner", "reason": "offboarding"},
    )
    return heir.user_id


def leaver_remove(*, actor: User, leaver: User, successor: User | None) -> list[Departure]:
    """End every membership of someone who leaves the company.

    Groups and channels they owned alone pass to ``successor`` (added as owner
    if not a member), or without one to their longest-standing active member;
    when nobody could own one, ``Invalid`` is raised and nothing changes, so no
    conversation is ever left without an owner. The leaver stays listed as a
    former member (``left_at``), their messages and files stay readable, and a
    direct conversation stays readable for the other person (who can no longer
    write to it: ``message_send`` refuses an inactive partner).

    Runs inside the caller's transaction (``accounts.offboarding.offboard``).
    """
    ids = Membership.objects.filter(user=leaver, left_at__isnull=True).values("conversation_id")
    # Every row locked, in id order, before the first journal write: services
    # never take a conversation lock after the journal lock (lock_journal).
    conversations = list(Conversation.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    departures = []
    for conversation in conversations:
        own = Membership.objects.get(conversation=conversation, user=leaver)
        was_owner = own.role == Membership.Role.OWNER
        new_owner = None
        if was_owner and not conversation.is_direct:
            new_owner = _hand_over(conversation, actor, leaver, successor)
        Membership.objects.filter(pk=own.pk).update(left_at=Now())
        event = append(
            conversation, Event.Type.MEMBER_REMOVED, actor, subject=leaver, data={"reason": "offboarded"}
        )
        departures.append(
            Departure(
                conversation_id=conversation.pk,
                kind=conversation.kind,
                name=str(conversation),
                was_owner=was_owner,
                new_owner_id=new_owner,
                event_id=event.id,
            )
        )
    return departures


def returner_rejoin_direct(*, actor: User, user: User) -> list[int]:
    """Someone offboarded comes back: their direct conversations open to them
    again (groups and channels add them as anyone else is added). Runs inside
    the caller's transaction (``accounts.offboarding.reactivate``)."""
    ids = Membership.objects.filter(
        user=user, left_at__isnull=False, conversation__kind=Conversation.Kind.DIRECT
    ).values("conversation_id")
    conversations = list(Conversation.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    for conversation in conversations:
        _add_member(conversation, actor, user)
    return [c.pk for c in conversations]
