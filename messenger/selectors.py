"""Read queries of the messenger. Each page and frame uses a fixed number of
queries, whatever the length of a conversation."""

import html
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils.html import escape, strip_tags

from accounts.models import User
from archive.models import StoredFile
from messenger.models import Conversation, Event, Membership, Mention, Message, MessageAttachment, Reaction
from messenger.permissions import access_membership

PAGE_SIZE = 50


def person_label(user: User) -> str:
    """A person's name as chat shows it: marked when they have left the company,
    or when they are an external contact."""
    return f"{user} (left the company)" if user.offboarded_at is not None else user.chat_name


@dataclass
class SidebarItem:
    conversation: Conversation
    title: str
    unread: int
    mentions: int
    is_muted: bool
    partner: User | None = None

    @property
    def kind(self) -> str:
        return self.conversation.kind


def _count(queryset: QuerySet[Any]) -> Subquery:
    return Subquery(
        queryset.order_by().values("conversation").annotate(c=Count("pk")).values("c"),
        output_field=IntegerField(),
    )


def sidebar_for_user(*, user: User) -> list[SidebarItem]:
    """The person's conversations, most recent first, with unread and mention counts (2 queries)."""
    unread = Message.objects.filter(
        conversation=OuterRef("conversation"), seq__gt=OuterRef("last_read_seq"), deleted_at__isnull=True
    ).exclude(author=user)
    mentioned = unread.filter(
        Q(mentions_everyone=True) | Exists(Mention.objects.filter(message=OuterRef("pk"), user=user))
    )
    memberships = list(
        Membership.objects.filter(user=user, left_at__isnull=True)
        .select_related("conversation")
        .annotate(unread=Coalesce(_count(unread), 0), mentioned=Coalesce(_count(mentioned), 0))
        .order_by(F("conversation__last_message_at").desc(nulls_last=True), "-conversation__created_at")
    )
    direct_ids = [m.conversation_id for m in memberships if m.conversation.is_direct]
    partners: dict[int, User] = {}
    if direct_ids:
        for other in (
            Membership.objects.filter(conversation_id__in=direct_ids)
            .exclude(user=user)
            .select_related("user")
        ):
            partners[other.conversation_id] = other.user
    items = []
    for membership in memberships:
        conversation = membership.conversation
        partner = partners.get(conversation.pk) if conversation.is_direct else None
        if conversation.is_direct:
            title = person_label(partner) if partner else f"{user} (you)"
        else:
            title = str(conversation)
        mentions = membership.unread if conversation.is_direct else membership.mentioned
        items.append(
            SidebarItem(
                conversation=conversation,
                title=title,
                unread=membership.unread,
                mentions=mentions,
                is_muted=membership.is_muted,
                partner=partner,
            )
        )
    return items


@dataclass
class ReactionSummary:
    emoji: str
    count: int
    mine: bool
    names: list[str] = field(default_factory=list)
    user_ids: list[int] = field(default_factory=list)


@dataclass
class MessageView:
    message: Message
    reactions: list[ReactionSummary]
    mentions_me: bool


@dataclass
class ConversationPage:
    conversation: Conversation
    membership: Membership
    members: list[Membership]
    messages: list[MessageView]
    has_older: bool
    title: str
    partner: User | None
    seen_by: dict[int, list[User]]

    @property
    def oldest_seq(self) -> int | None:
        return self.messages[0].message.seq if self.messages else None

    @property
    def externals(self) -> list[User]:
        """External contacts taking part by email."""
        return [m.user for m in self.members if m.user.is_external]


def reaction_summaries(
    *, message_ids: list[int], viewer: User | None = None
) -> dict[int, list[ReactionSummary]]:
    """Each message's reactions by emoji, in the order they were first given
    (one query). ``mine`` says whether ``viewer`` gave one; without a viewer
    (a live event, the same for every reader) it is never set."""
    summaries: dict[int, dict[str, ReactionSummary]] = defaultdict(dict)
    if message_ids:
        for reaction in (
            Reaction.objects.filter(message_id__in=message_ids)
            .select_related("user")
            .order_by("created_at", "pk")
        ):
            summary = summaries[reaction.message_id].setdefault(
                reaction.emoji, ReactionSummary(emoji=reaction.emoji, count=0, mine=False)
            )
            summary.count += 1
            summary.mine = summary.mine or (viewer is not None and reaction.user_id == viewer.pk)
            summary.names.append(str(reaction.user))
            summary.user_ids.append(reaction.user_id)
    return {message_id: list(found.values()) for message_id, found in summaries.items()}


def messages_before(*, messages: list[Message]) -> dict[int, Message]:
    """The message just before each of ``messages`` in its conversation, by
    message id (one query; a conversation's first message has none)."""
    if not messages:
        return {}
    wanted = {(m.conversation_id, m.seq - 1) for m in messages}
    candidates = Message.objects.only("id", "conversation_id", "seq", "author_id", "created_at")
    if len(wanted) == 1:  # a live event: the plainest query
        ((conversation_id, seq),) = wanted
        candidates = candidates.filter(conversation_id=conversation_id, seq=seq)
    else:
        candidates = candidates.filter(
            conversation_id__in={c for c, _ in wanted}, seq__in={s for _, s in wanted}
        )
    found = {(m.conversation_id, m.seq): m for m in candidates if (m.conversation_id, m.seq) in wanted}
    keys = {m.pk: (m.conversation_id, m.seq - 1) for m in messages}
    return {pk: found[key] for pk, key in keys.items() if key in found}


def _message_views(user: User, messages: list[Message]) -> list[MessageView]:
    ids = [m.pk for m in messages]
    summaries = reaction_summaries(message_ids=ids, viewer=user)
    mentioned_ids: set[int] = set()
    if ids:
        mentioned_ids = set(
            Mention.objects.filter(message_id__in=ids, user=user).values_list("message_id", flat=True)
        )
    return [
        MessageView(
            message=m,
            reactions=summaries.get(m.pk, []),
            mentions_me=(m.pk in mentioned_ids or m.mentions_everyone) and m.author_id != user.pk,
        )
        for m in messages
    ]


def conversation_page(
    *, user: User, conversation_id: int, before_seq: int | None = None, limit: int = PAGE_SIZE
) -> ConversationPage:
    """The latest messages (or those before ``before_seq``), oldest first, with
    reactions, replies and read markers, in a constant number of queries."""
    membership = access_membership(user, conversation_id)
    conversation = membership.conversation
    messages_qs = (
        Message.objects.filter(conversation=conversation)
        .select_related("author", "reply_to", "reply_to__author")
        .prefetch_related(Prefetch("attachments", queryset=MessageAttachment.objects.select_related("file")))
    )
    if before_seq is not None:
        messages_qs = messages_qs.filter(seq__lt=before_seq)
    newest_first = list(messages_qs.order_by("-seq")[: limit + 1])
    has_older = len(newest_first) > limit
    messages = list(reversed(newest_first[:limit]))
    members = list(
        Membership.objects.filter(conversation=conversation, left_at__isnull=True)
        .select_related("user")
        .order_by("user__display_name")
    )
    partner = None
    if conversation.is_direct:
        partner = next((m.user for m in members if m.user_id != user.pk), None)
        if partner is None:
            former = (
                Membership.objects.filter(conversation=conversation)
                .exclude(user=user)
                .select_related("user")
                .first()
            )
            partner = former.user if former else None
    if conversation.is_direct:
        title = person_label(partner) if partner else f"{user} (you)"
    else:
        title = str(conversation)
    # "Seen by" in small conversations: the latest message each member has read.
    seen_by: dict[int, list[User]] = defaultdict(list)
    if len(members) <= settings.KONTOR_SEEN_BY_MAX_MEMBERS and messages:
        by_seq = {m.seq: m.pk for m in messages}
        for member in members:
            if member.user_id == user.pk or not member.user.send_read_receipts:
                continue
            readable = [seq for seq in by_seq if seq <= member.last_read_seq]
            if readable:
                seen_by[by_seq[max(readable)]].append(member.user)
    return ConversationPage(
        conversation=conversation,
        membership=membership,
        members=members,
        messages=_message_views(user, messages),
        has_older=has_older,
        title=title,
        partner=partner,
        seen_by=dict(seen_by),
    )


def _visible_events(user: User) -> "QuerySet[Event]":
    """Journal events ``user`` may see: events of conversations the person is an
    active member of, and membership events about the person (so a removed
    client learns of it)."""
    mine = Membership.objects.filter(user=user, left_at__isnull=True).values("conversation_id")
    return Event.objects.filter(Q(conversation_id__in=mine) | Q(subject=user))


def _with_payload_data(events: "QuerySet[Event]") -> "QuerySet[Event]":
    """What ``messenger.events.event_payloads`` needs of each event, its message and row."""
    return events.select_related(
        "actor",
        "subject",
        "message",
        "message__author",
        "message__conversation",
        "message__reply_to",
        "message__reply_to__author",
    ).prefetch_related(
        Prefetch("message__mentions", queryset=Mention.objects.only("message_id", "user_id")),
        Prefetch("message__attachments", queryset=MessageAttachment.objects.select_related("file")),
    )


def events_after(*, user: User, after: int, limit: int, upto: int | None = None) -> tuple[list[Event], bool]:
    """Journal events after ``after`` (and at most ``upto``) that ``user`` may
    see, oldest first. Returns at most ``limit`` events and whether more were
    left out."""
    visible = _visible_events(user).filter(id__gt=after)
    if upto is not None:
        visible = visible.filter(id__lte=upto)
    events = list(_with_payload_data(visible).order_by("id")[: limit + 1])
    return events[:limit], len(events) > limit


@dataclass
class JournalCheck:
    """What a socket missed of the journal between its mark and ``upto``."""

    missing: list[Event]
    truncated: bool
    upto: int


def journal_check(
    *, user: User, after: int, upto: int | None, delivered: "set[int]", limit: int
) -> JournalCheck:
    """The events in ``(after, upto]`` that ``user`` may see and that are not in
    ``delivered`` (the ids a socket has sent). ``upto`` None means the journal's
    head now.

    Journal ids become visible in commit order (``events.lock_journal``), so
    once an id is known to be committed, every smaller one is too: after this
    check every visible event up to ``upto`` has been delivered or is in
    ``missing``. One small query when nothing is missing (the usual case), a
    second one for the missing events' content.
    """
    if upto is None:
        upto = latest_event_id()
    if upto <= after:
        return JournalCheck(missing=[], truncated=False, upto=after)
    ids = _visible_events(user).filter(id__gt=after, id__lte=upto).values_list("id", flat=True)
    lost = sorted(set(ids) - delivered)
    if not lost:
        return JournalCheck(missing=[], truncated=False, upto=upto)
    truncated = len(lost) > limit
    missing = list(_with_payload_data(Event.objects.filter(id__in=lost[:limit])).order_by("id"))
    return JournalCheck(missing=missing, truncated=truncated, upto=upto)


def conversation_ids_for_user(*, user: User) -> set[int]:
    return set(
        Membership.objects.filter(user=user, left_at__isnull=True).values_list("conversation_id", flat=True)
    )


def socket_start(*, user: User) -> tuple[set[int], int, set[int]]:
    """What a new socket needs: the conversations to listen to, the newest event
    id, and the people who see this person's presence (direct-message partners)."""
    conversation_ids = conversation_ids_for_user(user=user)
    partners = set(
        Membership.objects.filter(
            conversation_id__in=conversation_ids, conversation__kind=Conversation.Kind.DIRECT
        )
        .exclude(user=user)
        .values_list("user_id", flat=True)
    )
    return conversation_ids, latest_event_id(), partners


def latest_event_id() -> int:
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


@dataclass
class ChannelRow:
    channel: Conversation
    members: int
    joined: bool


def channel_directory(*, user: User, q: str = "") -> list[ChannelRow]:
    """Public channels (and private ones the person is in), for the channel browser."""
    mine = Membership.objects.filter(conversation=OuterRef("pk"), user=user, left_at__isnull=True)
    channels = Conversation.objects.filter(kind=Conversation.Kind.CHANNEL).filter(
        Q(is_private=False) | Q(Exists(mine))
    )
    if q:
        channels = channels.filter(Q(name__icontains=q) | Q(topic__icontains=q))
    channels = channels.annotate(
        n=Count("memberships", filter=Q(memberships__left_at__isnull=True)), joined=Exists(mine)
    ).order_by("archived_at", "name")
    return [ChannelRow(channel=c, members=c.n, joined=c.joined) for c in channels]


def people_directory(*, q: str = "") -> QuerySet[User]:
    people = User.objects.filter(is_active=True).select_related("department")
    if q:
        people = people.filter(
            Q(display_name__icontains=q)
            | Q(email__icontains=q)
            | Q(job_title__icontains=q)
            | Q(department__name__icontains=q)
        )
    return people.order_by("display_name", "email")


@dataclass
class SearchHit:
    message: Message
    snippet: str


def message_search(*, user: User, q: str, limit: int = 30, before_id: int | None = None) -> list[SearchHit]:
    """Messages the person can see (active memberships) that match ``q`` in
    their body or in the text extracted from their files.

    PostgreSQL: full-text search over the GIN-indexed ``to_tsvector('simple', …)``
    of message bodies and of stored files' text. SQLite: every word must appear
    (case-insensitive) in the body or in a file. Only messages that are not
    deleted count, so a deleted message's files are not found either. Newest
    first; ``before_id`` pages on. One query, however many hits.
    """
    q = q.strip()
    if not q:
        return []
    mine = Membership.objects.filter(user=user, left_at__isnull=True).values("conversation_id")
    found: list[Message]
    hits = Message.objects.filter(
        conversation_id__in=mine, deleted_at__isnull=True, author__processing_restricted_at__isnull=True
    ).select_related("author", "conversation")
    if before_id is not None:
        hits = hits.filter(pk__lt=before_id)
    words = _words(q)
    attached = MessageAttachment.objects.filter(message=OuterRef("pk"))
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        # The GIN-indexed full-text search finds and orders the hits; the
        # snippet is cut from the raw body below, the same on both backends.
        query = SearchQuery(q, config="simple", search_type="websearch")
        # Matching files are found through their own index first, then tied
        # to messages: the vector is never computed per message row.
        files = StoredFile.objects.annotate(vector=SearchVector("text", config="simple")).filter(vector=query)
        in_file = attached.filter(file__in=files.values("pk"))
        hits = hits.annotate(vector=SearchVector("body", config="simple")).filter(
            Q(vector=query) | Exists(in_file)
        )
    else:
        in_file = attached
        for word in words:
            hits = hits.filter(Q(body__icontains=word) | Exists(attached.filter(file__text__icontains=word)))
            in_file = in_file.filter(file__text__icontains=word)
    # The name of a file that matches, for the snippet of a message found by
    # it (a subquery: still the one query).
    hits = hits.annotate(found_in=Subquery(in_file.order_by("position").values("file__name")[:1]))
    found = list(hits.order_by("-pk")[:limit])
    # Cut the snippet from the rendered text, so Markdown marks (**, `) don't show.
    return [SearchHit(message=m, snippet=_snippet(m, words)) for m in found]


def _snippet(message: Message, words: list[str]) -> str:
    plain = _plain(message)
    found_in: str | None = getattr(message, "found_in", None)
    if found_in and words and not any(w.lower() in plain.lower() for w in words):
        return highlight(plain, words) + (" " if plain else "") + f"<small>in {escape(found_in)}</small>"
    return highlight(plain, words)


def _plain(message: Message) -> str:
    return " ".join(html.unescape(strip_tags(message.html)).split()) or message.body


def _words(q: str) -> list[str]:
    return [w for w in re.findall(r"\w[\w.@-]*", q) if w.lower() not in ("or", "and")][:10]


def highlight(body: str, words: list[str], width: int = 180) -> str:
    """An excerpt of ``body`` around the first match, HTML-escaped, matches in <mark>.

    Matches are found in the raw text and each piece is escaped on its own, so
    markup in a body stays text and entities are never cut apart.
    """
    pattern = re.compile("|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True)), re.I)
    first = pattern.search(body) if words else None
    start = max(0, (first.start() if first else 0) - width // 3)
    end = min(len(body), start + width)
    excerpt = body[start:end]
    pieces: list[str] = []
    pos = 0
    for match in pattern.finditer(excerpt) if words else ():
        pieces.append(escape(excerpt[pos : match.start()]))
        pieces.append(f"<mark>{escape(match.group())}</mark>")
        pos = match.end()
    pieces.append(escape(excerpt[pos:]))
    return ("…" if start else "") + "".join(pieces) + ("…" if end < len(body) else "")


@dataclass
class ConversationSettings:
    conversation: Conversation
    membership: Membership
    members: list[Membership]
    candidates: list[User]
    title: str
    # People who left the conversation (or the company): history stays theirs.
    former: list[Membership] = field(default_factory=list)

    @property
    def is_owner(self) -> bool:
        return self.membership.role == Membership.Role.OWNER


def conversation_settings(*, user: User, conversation_id: int) -> ConversationSettings:
    """The settings page: members, who may still be added, and the viewer's role."""
    membership = access_membership(user, conversation_id)
    conversation = membership.conversation
    everyone = list(
        Membership.objects.filter(conversation=conversation)
        .select_related("user", "user__department")
        .order_by("-role", "user__display_name")
    )
    members = [m for m in everyone if m.left_at is None]
    former = sorted((m for m in everyone if m.left_at is not None), key=lambda m: m.left_at or m.joined_at)
    member_ids = {m.user_id for m in members}
    candidates = [] if conversation.is_direct else [p for p in people_directory() if p.pk not in member_ids]
    if conversation.is_direct:
        partner = next((m.user for m in everyone if m.user_id != user.pk), None)
        title = person_label(partner) if partner else f"{user} (you)"
    else:
        title = str(conversation)
    return ConversationSettings(
        conversation=conversation,
        membership=membership,
        members=members,
        candidates=candidates,
        title=title,
        former=former,
    )


def first_names(*, user_ids: list[int]) -> list[str]:
    """Short names of these people, in the order of ``user_ids``."""
    people = {u.pk: u for u in User.objects.filter(pk__in=user_ids)}
    return [people[i].get_short_name() for i in user_ids if i in people]


def conversation_files(*, user: User, conversation_id: int) -> tuple[Membership, list[MessageAttachment]]:
    """Every file shared in a conversation (not of deleted messages), newest first."""
    membership = access_membership(user, conversation_id)
    files = list(
        MessageAttachment.objects.filter(
            message__conversation_id=conversation_id,
            message__deleted_at__isnull=True,
            message__author__processing_restricted_at__isnull=True,
        )
        .select_related("file", "message", "message__author")
        .order_by("-message__seq", "position")
    )
    return membership, files


def message_sent_with_client_id(*, user: User, client_id: uuid.UUID) -> list[int] | None:
    """The file ids of the message this person already sent with ``client_id``, if any."""
    message = Message.objects.filter(author=user, client_id=client_id).first()
    if message is None:
        return None
    return list(message.attachments.order_by("position").values_list("file_id", flat=True))


@dataclass(frozen=True)
class LeaverSummary:
    """What a person leaves behind in the messenger: what HR's offboarding shows
    before (``hr.selectors.offboarding_preview``) and reports after."""

    # Every conversation they were ever in, in id order, and when they left
    # each (None: still a member).
    conversations: dict[int, Conversation]
    left_at: dict[int, datetime | None]
    # Groups and channels they own with no other current owner.
    owned_alone: list[Conversation]
    # Direct conversations: the names of the others in them.
    partners: dict[int, list[str]]
    messages: int
    messages_deleted: int
    # The stored files attached to their messages, each once.
    file_ids: list[int]

    @property
    def conversation_ids(self) -> list[int]:
        return sorted(self.conversations)

    @property
    def current(self) -> int:
        """How many conversations they are still in."""
        return sum(1 for left in self.left_at.values() if left is None)


def leaver_summary(*, user: User) -> LeaverSummary:
    """The messenger side of a leaver, in five queries whatever their history."""
    memberships = list(Membership.objects.filter(user=user).select_related("conversation"))
    other_owner = Membership.objects.filter(
        conversation=OuterRef("conversation"), role=Membership.Role.OWNER, left_at__isnull=True
    ).exclude(user=user)
    owned = (
        Membership.objects.filter(user=user, left_at__isnull=True, role=Membership.Role.OWNER)
        .exclude(conversation__kind=Conversation.Kind.DIRECT)
        .exclude(Exists(other_owner))
        .select_related("conversation")
        .order_by("conversation__kind", "conversation__name")
    )
    direct_ids = [m.conversation_id for m in memberships if m.conversation.kind == Conversation.Kind.DIRECT]
    partners: dict[int, list[str]] = {}
    for membership in (
        Membership.objects.filter(conversation_id__in=direct_ids).exclude(user=user).select_related("user")
    ):
        partners.setdefault(membership.conversation_id, []).append(str(membership.user))
    messages = Message.objects.filter(author=user).aggregate(
        total=Count("pk"), deleted=Count("pk", filter=Q(deleted_at__isnull=False))
    )
    file_ids = (
        MessageAttachment.objects.filter(message__author=user)
        .order_by("file_id")
        .values_list("file_id", flat=True)
        .distinct()
    )
    return LeaverSummary(
        conversations={m.conversation_id: m.conversation for m in memberships},
        left_at={m.conversation_id: m.left_at for m in memberships},
        owned_alone=[m.conversation for m in owned],
        partners=partners,
        messages=messages["total"],
        messages_deleted=messages["deleted"],
        file_ids=list(file_ids),
    )
