"""Who hears of a message by email, and when.

Rules:
- Employees are mailed direct messages, mentions of them and mentions of
  everyone, per their setting (``User.email_notifications``): never;
  immediately (right away when no Kontor tab is open, else after
  ``ONLINE_GRACE`` if still unread); after their delay if still unread; or in
  a daily digest at ``KONTOR_EMAIL_DIGEST_HOUR`` in their own time zone.
- External contacts get every new message of their conversations, right away.
- Whatever arrived meanwhile for the same person and conversation goes into
  the same mail (a digest covers every conversation). A message read, deleted
  or hidden by the time its mail is due is not mailed.
- One ``MailNotification`` row per person and message: nobody is mailed a
  message twice. Rows are claimed by a conditional UPDATE before the mail
  leaves, so two workers never send the same batch; a send that fails gives
  the claim back and is tried again on the next run.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from accounts.models import EmailNotifications, User
from messenger import presence
from messenger.models import Conversation, MailNotification, Membership, Message, MessageAttachment

logger = logging.getLogger(__name__)

# An "immediately" person with Kontor open is mailed only if they have not
# read the message after this long: they may be away from the desk.
ONLINE_GRACE = timedelta(minutes=2)
# What ``notifications_queue`` reads of each member (``message_send`` loads them).
PREFERENCE_FIELDS = (
    "pk",
    "is_active",
    "is_external",
    "email_notifications",
    "email_notification_delay",
    "time_zone",
)


def _next_digest(user: User, now: datetime) -> datetime:
    try:
        zone = ZoneInfo(user.time_zone)
    except (KeyError, ValueError):
        zone = ZoneInfo(settings.KONTOR_TIME_ZONE)
    local = now.astimezone(zone)
    hour = min(settings.KONTOR_EMAIL_DIGEST_HOUR, 23)
    due = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if due <= local:
        due += timedelta(days=1)
    return due.astimezone(ZoneInfo("UTC"))


def _due_at(user: User, now: datetime, online: bool) -> datetime | None:
    choice = user.email_notifications
    if user.is_external:
        return now
    if choice == EmailNotifications.IMMEDIATELY:
        return now + ONLINE_GRACE if online else now
    if choice == EmailNotifications.DELAYED:
        return now + timedelta(minutes=user.email_notification_delay)
    if choice == EmailNotifications.DIGEST:
        return _next_digest(user, now)
    return None


def notifications_queue(
    *, message: Message, mention_ids: Iterable[int], members: list[User]
) -> list[MailNotification]:
    """Queue the mails a new message calls for, among ``members`` (the
    conversation's current members, loaded with ``PREFERENCE_FIELDS``). Runs
    inside ``message_send``'s transaction; ``notify_due`` is scheduled on
    commit for what is due now."""
    conversation = message.conversation
    members = [person for person in members if person.pk != message.author_id]
    mentioned = set(mention_ids)
    reasons: dict[int, str] = {}
    for person in members:
        if person.is_external:
            reasons[person.pk] = MailNotification.Reason.EXTERNAL
        elif not person.is_active or person.email_notifications == EmailNotifications.OFF:
            continue
        elif conversation.is_direct:
            reasons[person.pk] = MailNotification.Reason.DIRECT
        elif person.pk in mentioned:
            reasons[person.pk] = MailNotification.Reason.MENTION
        elif message.mentions_everyone:
            reasons[person.pk] = MailNotification.Reason.EVERYONE
    if not reasons:
        return []
    now = timezone.now()
    online = presence.online_user_ids(list(reasons))
    rows = []
    for person in members:
        if person.pk not in reasons:
            continue
        due = _due_at(person, now, person.pk in online)
        if due is not None:
            rows.append(
                MailNotification(
                    user=person,
                    message=message,
                    conversation=conversation,
                    reason=reasons[person.pk],
                    due_at=due,
                )
            )
    created = MailNotification.objects.bulk_create(rows, ignore_conflicts=True)
    if any(row.due_at <= now for row in rows):
        transaction.on_commit(_schedule_now, robust=True)
    return created


def _schedule_now() -> None:
    # Imported here: the task calls back into this module. ``robust``: a broker
    # that is down must not fail a send that committed; beat's sweep catches up.
    from messenger import tasks

    tasks.notify_due.delay()


class Batch:
    """The messages of one mail: for one person, one conversation (or, in a
    digest, several), claimed and ready to send."""

    def __init__(self, user: User, notices: list[MailNotification], *, digest: bool) -> None:
        self.user = user
        self.notices = notices
        self.digest = digest

    @property
    def messages(self) -> list[Message]:
        return [n.message for n in self.notices]

    @property
    def conversations(self) -> list[Conversation]:
        seen: dict[int, Conversation] = {}
        for notice in self.notices:
            seen.setdefault(notice.conversation_id, notice.conversation)
        return list(seen.values())


def _still_worth_mailing(notice: MailNotification, read_seq: dict[tuple[int, int], int]) -> bool:
    message, user = notice.message, notice.user
    if message.deleted_at is not None or message.author.processing_restricted_at is not None:
        return False
    if user.is_external:
        return user.email != "" and (notice.conversation_id, user.pk) in read_seq
    if not user.is_active or user.email_notifications == EmailNotifications.OFF:
        return False
    last_read = read_seq.get((notice.conversation_id, user.pk))
    # Not a member any more (None), or read it meanwhile.
    return last_read is not None and last_read < message.seq


def notifications_claim_due(*, now: datetime | None = None, limit: int = 200) -> list[Batch]:
    """Claim every due batch: for each person and conversation with a due
    notice, that notice and everything else pending for them there (a digest:
    everything pending for the person). Read or deleted messages are marked
    skipped. Each returned batch is claimed by this caller alone."""
    now = now or timezone.now()
    due_pairs = list(
        MailNotification.objects.filter(sent_at__isnull=True, due_at__lte=now)
        .values_list("user_id", "conversation_id")
        .distinct()[:limit]
    )
    if not due_pairs:
        return []
    user_ids = {u for u, _ in due_pairs}
    pending = list(
        MailNotification.objects.filter(sent_at__isnull=True, user_id__in=user_ids)
        .select_related("user", "conversation", "message__author")
        # The mail lists each message's files (and attaches them for externals): loaded once here.
        .prefetch_related(
            Prefetch("message__attachments", queryset=MessageAttachment.objects.select_related("file"))
        )
        .order_by("conversation_id", "message__seq")
    )
    memberships = Membership.objects.filter(
        user_id__in=user_ids, conversation_id__in={n.conversation_id for n in pending}, left_at__isnull=True
    ).values_list("conversation_id", "user_id", "last_read_seq")
    read_seq = {(c, u): seq for c, u, seq in memberships}
    due = set(due_pairs)
    groups: dict[tuple[int, int], list[MailNotification]] = defaultdict(list)
    skipped: list[int] = []
    for notice in pending:
        digest = notice.user.email_notifications == EmailNotifications.DIGEST and not notice.user.is_external
        key = (notice.user_id, 0 if digest else notice.conversation_id)
        # Everyone loaded has something due; outside a digest, only in that conversation.
        if not digest and (notice.user_id, notice.conversation_id) not in due:
            continue
        if _still_worth_mailing(notice, read_seq):
            groups[key].append(notice)
        else:
            skipped.append(notice.pk)
    if skipped:
        MailNotification.objects.filter(pk__in=skipped, sent_at__isnull=True).update(
            sent_at=now, skipped=True
        )
    batches = []
    for (_, conversation_key), notices in groups.items():
        ids = [n.pk for n in notices]
        # The claim: only rows still unsent are taken; a concurrent worker that
        # took some of them first makes this batch give way entirely.
        with transaction.atomic():
            claimed = MailNotification.objects.filter(pk__in=ids, sent_at__isnull=True).update(sent_at=now)
            if claimed != len(ids):
                transaction.set_rollback(True)
                continue
        batches.append(Batch(notices[0].user, notices, digest=conversation_key == 0))
    return batches


def notifications_mark_sent(*, batch: Batch, mail_message_id: str) -> None:
    MailNotification.objects.filter(pk__in=[n.pk for n in batch.notices]).update(
        mail_message_id=mail_message_id[:250]
    )


def notifications_release(*, batch: Batch) -> None:
    """The mail could not be sent: give the claim back, for the next run."""
    MailNotification.objects.filter(pk__in=[n.pk for n in batch.notices], mail_message_id="").update(
        sent_at=None
    )
