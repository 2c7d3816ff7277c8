"""The messenger's reads: the sidebar, a conversation's pages, the journal a
client resumes from, and search. Each shows only what the person may see."""

import time
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from messenger import selectors, services
from messenger.errors import NotFound
from messenger.models import Conversation, Event, Membership
from tests.factories import make_user, settings_change

pytestmark = pytest.mark.django_db


@pytest.fixture
def group(alice: User, bob: User, charlie: User) -> Conversation:
    return services.group_create(actor=alice, name="Launch", member_ids=[bob.pk, charlie.pk])


def send(actor: User, conversation: Conversation, body: str) -> int:
    return services.message_send(actor=actor, conversation_id=conversation.pk, body=body).message.pk


def tick() -> None:
    """Let the database clock move on (SQLite keeps milliseconds)."""
    time.sleep(0.005)


# --- Sidebar ------------------------------------------------------------------------


def test_sidebar_lists_the_most_recent_conversation_first(alice: User, bob: User, charlie: User) -> None:
    quiet = services.channel_create(actor=alice, name="quiet")
    dm = services.direct_open(actor=alice, other_user_id=bob.pk)
    other = services.direct_open(actor=alice, other_user_id=charlie.pk)
    send(bob, dm, "first")
    tick()
    send(charlie, other, "second")
    tick()
    send(bob, dm, "third")

    items = selectors.sidebar_for_user(user=alice)

    assert [item.conversation.pk for item in items] == [dm.pk, other.pk, quiet.pk]
    assert [item.title for item in items] == ["Bob Brandt", "Charlie Czerny", "#quiet"]
    assert items[0].partner == bob


def test_sidebar_counts_unread_without_own_and_deleted_messages(
    dm: Conversation, alice: User, bob: User
) -> None:
    send(alice, dm, "one")
    send(bob, dm, "two: bob has read up to here")
    send(alice, dm, "three")
    oops = send(alice, dm, "four")
    send(alice, dm, "five")
    services.message_delete(actor=alice, message_id=oops)

    (item,) = selectors.sidebar_for_user(user=bob)

    assert item.unread == 2
    assert item.mentions == 2  # in a direct conversation every message is for me
    (own,) = selectors.sidebar_for_user(user=alice)
    assert own.unread == 0


def test_sidebar_never_counts_own_messages_as_unread(dm: Conversation, alice: User, bob: User) -> None:
    send(alice, dm, "mine")
    send(bob, dm, "theirs")
    send(alice, dm, "mine again")
    Membership.objects.filter(conversation=dm, user=alice).update(last_read_seq=0)

    (item,) = selectors.sidebar_for_user(user=alice)

    assert item.unread == 1


def test_sidebar_counts_mentions_including_at_channel(group: Conversation, alice: User, bob: User) -> None:
    send(alice, group, "@bob can you look?")
    send(alice, group, "@channel release at 5")
    send(alice, group, "no mention")
    send(alice, group, "@charlie not you, bob")
    deleted = send(alice, group, "@bob never mind")
    services.message_delete(actor=alice, message_id=deleted)

    (item,) = selectors.sidebar_for_user(user=bob)

    assert (item.unread, item.mentions) == (4, 2)


def test_a_mention_edited_away_no_longer_counts(group: Conversation, alice: User, bob: User) -> None:
    message = send(alice, group, "@bob can you check?")

    services.message_edit(actor=alice, message_id=message, body="never mind, found it")

    (item,) = selectors.sidebar_for_user(user=bob)
    assert (item.unread, item.mentions) == (1, 0)
    (view,) = selectors.conversation_page(user=bob, conversation_id=group.pk).messages
    assert view.mentions_me is False


def test_a_mention_added_by_an_edit_counts(group: Conversation, alice: User, bob: User) -> None:
    message = send(alice, group, "can someone check?")

    services.message_edit(actor=alice, message_id=message, body="@bob can you check?")

    (item,) = selectors.sidebar_for_user(user=bob)
    assert (item.unread, item.mentions) == (1, 1)


def test_sidebar_stops_counting_once_read(group: Conversation, alice: User, bob: User) -> None:
    send(alice, group, "@bob one")
    send(alice, group, "two")
    services.conversation_mark_read(actor=bob, conversation_id=group.pk)

    (item,) = selectors.sidebar_for_user(user=bob)

    assert (item.unread, item.mentions) == (0, 0)


def test_sidebar_leaves_out_conversations_one_left(group: Conversation, dm: Conversation, bob: User) -> None:
    services.conversation_leave(actor=bob, conversation_id=group.pk)

    assert [item.conversation.pk for item in selectors.sidebar_for_user(user=bob)] == [dm.pk]


def test_sidebar_needs_two_queries_however_many_messages(
    dm: Conversation, group: Conversation, alice: User, bob: User, django_assert_num_queries: object
) -> None:
    services.channel_create(actor=alice, name="general", member_ids=[bob.pk])
    send(alice, dm, "hello")
    send(alice, group, "@bob hi")
    with django_assert_num_queries(2):  # type: ignore[operator]
        few = selectors.sidebar_for_user(user=bob)

    for i in range(30):
        send(alice, dm if i % 2 else group, f"@bob message {i}")
    with django_assert_num_queries(2):  # type: ignore[operator]
        many = selectors.sidebar_for_user(user=bob)

    assert len(few) == len(many) == 3
    assert sum(item.unread for item in many) == 32
    with django_assert_num_queries(0):  # type: ignore[operator]
        [(item.title, item.kind, item.partner, item.conversation.name) for item in many]


# --- A conversation's pages ----------------------------------------------------------


def test_conversation_page_shows_the_latest_messages_oldest_first(dm: Conversation, alice: User) -> None:
    for i in range(1, 8):
        send(alice, dm, f"m{i}")

    page = selectors.conversation_page(user=alice, conversation_id=dm.pk, limit=3)

    assert [view.message.body for view in page.messages] == ["m5", "m6", "m7"]
    assert page.has_older is True
    assert page.oldest_seq == 5


def test_conversation_page_pages_back_by_sequence(dm: Conversation, alice: User) -> None:
    for i in range(1, 8):
        send(alice, dm, f"m{i}")

    middle = selectors.conversation_page(user=alice, conversation_id=dm.pk, before_seq=5, limit=3)
    oldest = selectors.conversation_page(user=alice, conversation_id=dm.pk, before_seq=2, limit=3)
    exact = selectors.conversation_page(user=alice, conversation_id=dm.pk, before_seq=4, limit=3)

    assert [view.message.seq for view in middle.messages] == [2, 3, 4]
    assert middle.has_older is True
    assert [view.message.seq for view in oldest.messages] == [1]
    assert oldest.has_older is False
    assert [view.message.seq for view in exact.messages] == [1, 2, 3]
    assert exact.has_older is False


def test_pages_stay_stable_while_new_messages_arrive(dm: Conversation, alice: User, bob: User) -> None:
    for i in range(1, 7):
        send(alice, dm, f"m{i}")
    first = selectors.conversation_page(user=bob, conversation_id=dm.pk, limit=3)
    send(alice, dm, "new")

    older = selectors.conversation_page(user=bob, conversation_id=dm.pk, before_seq=first.oldest_seq, limit=3)

    assert [view.message.body for view in older.messages] == ["m1", "m2", "m3"]


def test_deleted_messages_are_tombstones_on_the_page(dm: Conversation, alice: User, bob: User) -> None:
    gone = send(alice, dm, "regrettable")

    services.message_delete(actor=alice, message_id=gone)

    (view,) = selectors.conversation_page(user=bob, conversation_id=dm.pk).messages
    assert view.message.is_deleted
    assert view.message.body == ""


def test_reactions_are_summarised_with_my_own_marked(
    group: Conversation, alice: User, bob: User, charlie: User
) -> None:
    message = send(alice, group, "ship it?")
    services.reaction_set(actor=bob, message_id=message, emoji="👍")
    services.reaction_set(actor=alice, message_id=message, emoji="👍")
    services.reaction_set(actor=alice, message_id=message, emoji="🎉")

    (mine,) = selectors.conversation_page(user=alice, conversation_id=group.pk).messages
    (theirs,) = selectors.conversation_page(user=charlie, conversation_id=group.pk).messages

    assert [(r.emoji, r.count, r.mine) for r in mine.reactions] == [("👍", 2, True), ("🎉", 1, True)]
    assert [(r.emoji, r.count, r.mine) for r in theirs.reactions] == [("👍", 2, False), ("🎉", 1, False)]
    assert sorted(mine.reactions[0].names) == ["Alice Adler", "Bob Brandt"]


def test_mentions_of_me_are_marked(group: Conversation, alice: User, bob: User) -> None:
    send(alice, group, "@bob please")
    send(alice, group, "@channel all")
    send(alice, group, "nothing")

    page = selectors.conversation_page(user=bob, conversation_id=group.pk)

    assert [view.mentions_me for view in page.messages] == [True, True, False]


def test_seen_by_respects_read_receipts_setting(
    group: Conversation, alice: User, bob: User, charlie: User
) -> None:
    first = send(alice, group, "one")
    second = send(alice, group, "two")
    send(alice, group, "three")
    settings_change(charlie, send_read_receipts=False)
    services.conversation_mark_read(actor=bob, conversation_id=group.pk, message_id=second)
    services.conversation_mark_read(actor=charlie, conversation_id=group.pk)

    page = selectors.conversation_page(user=alice, conversation_id=group.pk)

    assert {pk: [u.pk for u in users] for pk, users in page.seen_by.items()} == {second: [bob.pk]}
    assert first not in page.seen_by


def test_conversation_page_query_count_does_not_grow_with_length(
    group: Conversation, alice: User, bob: User
) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            page = selectors.conversation_page(user=bob, conversation_id=group.pk)
            [
                (v.message.author.display_name, v.message.reply_to and v.message.reply_to.author.email)
                for v in page.messages
            ]
        return len(captured)

    root = send(alice, group, "root")
    services.reaction_set(actor=bob, message_id=root, emoji="👍")
    few = queries()
    for i in range(30):
        sent = services.message_send(
            actor=alice, conversation_id=group.pk, body=f"@bob {i}", reply_to_id=root
        )
        services.reaction_set(actor=bob, message_id=sent.message.pk, emoji="👀")

    assert queries() == few


def test_outsider_cannot_read_a_conversation(dm: Conversation, charlie: User) -> None:
    with pytest.raises(NotFound):
        selectors.conversation_page(user=charlie, conversation_id=dm.pk)


# --- The journal a client resumes from ---------------------------------------------


def test_events_after_holds_only_what_the_person_may_see(
    alice: User, bob: User, charlie: User, group: Conversation
) -> None:
    ours = services.direct_open(actor=alice, other_user_id=bob.pk)
    theirs = services.direct_open(actor=alice, other_user_id=charlie.pk)
    send(alice, ours, "for bob")
    send(alice, theirs, "for charlie")
    send(alice, group, "for the group")
    services.member_remove(actor=alice, conversation_id=group.pk, user_id=charlie.pk)
    send(alice, group, "charlie is gone")

    events, truncated = selectors.events_after(user=charlie, after=0, limit=100)

    assert truncated is False
    ids = [e.id for e in events]
    assert ids == sorted(ids)
    assert {e.conversation_id for e in events if e.conversation_id != group.pk} == {theirs.pk}
    from_group = [(e.type, e.subject_id) for e in events if e.conversation_id == group.pk]
    assert from_group == [(Event.Type.MEMBER_ADDED, charlie.pk), (Event.Type.MEMBER_REMOVED, charlie.pk)]
    bodies = [e.message.body for e in events if e.message is not None]
    assert bodies == ["for charlie"]


def test_events_after_starts_after_the_given_id(dm: Conversation, alice: User, bob: User) -> None:
    marker = services.message_send(actor=alice, conversation_id=dm.pk, body="seen").event_id
    send(alice, dm, "missed 1")
    send(bob, dm, "missed 2")

    events, _ = selectors.events_after(user=bob, after=marker, limit=10)

    assert [e.message.body for e in events if e.message] == ["missed 1", "missed 2"]
    assert all(e.id > marker for e in events)


def test_events_after_says_when_it_left_some_out(dm: Conversation, alice: User, bob: User) -> None:
    start = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
    for i in range(5):
        send(alice, dm, f"m{i}")

    some, truncated = selectors.events_after(user=bob, after=start, limit=3)
    exact, exact_truncated = selectors.events_after(user=bob, after=start, limit=5)

    assert [e.message.body for e in some if e.message] == ["m0", "m1", "m2"]
    assert truncated is True
    assert len(exact) == 5
    assert exact_truncated is False


# --- Search ----------------------------------------------------------------------------


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def shown(snippet: str) -> tuple[str, list[str]]:
    """What a browser shows for the snippet, and which elements it makes."""
    parser = _Text()
    parser.feed(snippet)
    parser.close()
    return " ".join("".join(parser.parts).split()), parser.tags


def test_search_finds_only_messages_in_my_conversations(alice: User, bob: User, charlie: User) -> None:
    ours = services.direct_open(actor=alice, other_user_id=bob.pk)
    private = services.direct_open(actor=alice, other_user_id=charlie.pk)
    visible = send(alice, ours, "the quarterly report is ready")
    send(alice, private, "quarterly numbers, between us")

    hits = selectors.message_search(user=bob, q="quarterly")

    assert [hit.message.pk for hit in hits] == [visible]
    assert selectors.message_search(user=make_user(), q="quarterly") == []


def test_search_skips_deleted_messages(dm: Conversation, alice: User, bob: User) -> None:
    gone = send(alice, dm, "password is hunter2")
    kept = send(alice, dm, "hunter2 was a joke")
    services.message_delete(actor=alice, message_id=gone)

    hits = selectors.message_search(user=bob, q="hunter2")

    assert [hit.message.pk for hit in hits] == [kept]


def test_search_stops_at_the_conversations_one_left(group: Conversation, alice: User, bob: User) -> None:
    send(alice, group, "roadmap for next year")
    services.conversation_leave(actor=bob, conversation_id=group.pk)

    assert selectors.message_search(user=bob, q="roadmap") == []


def test_search_marks_the_hit(dm: Conversation, alice: User, bob: User) -> None:
    send(alice, dm, "Let us meet about the budget tomorrow")

    (hit,) = selectors.message_search(user=bob, q="budget")

    assert "<mark>budget</mark>" in hit.snippet
    assert shown(hit.snippet) == ("Let us meet about the budget tomorrow", ["mark"])


def test_search_newest_first(dm: Conversation, alice: User, bob: User) -> None:
    older = send(alice, dm, "invoice one")
    newer = send(bob, dm, "invoice two")

    assert [hit.message.pk for hit in selectors.message_search(user=bob, q="invoice")] == [newer, older]


def test_search_snippet_keeps_markup_as_escaped_text(dm: Conversation, alice: User, bob: User) -> None:
    send(alice, dm, "use <b>bold</b> and <script>x()</script> carefully")

    (hit,) = selectors.message_search(user=bob, q="carefully")

    assert "&lt;b&gt;bold&lt;/b&gt;" in hit.snippet
    assert "<b>" not in hit.snippet
    assert "<script" not in hit.snippet
    assert shown(hit.snippet) == ("use <b>bold</b> and <script>x()</script> carefully", ["mark"])


def test_search_snippet_does_not_break_escaped_characters(dm: Conversation, alice: User, bob: User) -> None:
    """Highlighting a word must not cut into the escaping of ``<`` or ``&``."""
    send(alice, dm, "5 < 6 & 7 > 2 is an lt amp gt example")

    (hit,) = selectors.message_search(user=bob, q="lt")

    assert shown(hit.snippet) == ("5 < 6 & 7 > 2 is an lt amp gt example", ["mark"])
    assert "<mark>lt</mark>" in hit.snippet


def test_empty_search_finds_nothing(dm: Conversation, alice: User, bob: User) -> None:
    send(alice, dm, "anything")

    assert selectors.message_search(user=bob, q="   ") == []
