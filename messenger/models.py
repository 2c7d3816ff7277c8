"""Conversations, memberships, messages and the append-only journal.

The journal (``Event``, with ``MessageRevision`` for message content) is the
truth that reconnecting clients resume from and that compliance archives:
every message create, edit and delete, every reaction change and every
membership change is one row with a global, increasing id. Rows are only ever
inserted (``messenger.journal``); the database refuses updates (migration
0002). ``Message`` and ``Membership`` hold the current state for fast pages.
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.urls import reverse


class Conversation(models.Model):
    class Kind(models.TextChoices):
        DIRECT = "direct", "Direct message"
        GROUP = "group", "Group"
        CHANNEL = "channel", "Channel"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=80, blank=True)
    topic = models.CharField(max_length=250, blank=True)
    is_private = models.BooleanField(
        default=True, help_text="Private conversations are visible to their members only."
    )
    # "<smaller user id>:<larger user id>" for direct conversations: one per pair.
    direct_key = models.CharField(max_length=41, null=True, blank=True, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(db_default=Now())
    archived_at = models.DateTimeField(null=True, blank=True)
    allows_external = models.BooleanField(
        "external participants",
        default=False,
        help_text="Members may add people outside the company by email address (groups and channels).",
    )
    # Counters kept under a row lock by the services (``select_for_update``).
    last_seq = models.BigIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_message_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind="channel") | ~models.Q(name=""),
                name="messenger_channel_has_name",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="direct") | models.Q(direct_key__isnull=False),
                name="messenger_direct_has_key",
            ),
        ]
        indexes = [models.Index(fields=["kind", "is_private"], name="messenger_conv_kind_idx")]

    def __str__(self) -> str:
        if self.kind == self.Kind.CHANNEL:
            return f"#{self.name}"
        return self.name or f"{self.get_kind_display()} {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("messenger:conversation", args=[self.pk])

    @property
    def is_direct(self) -> bool:
        return self.kind == self.Kind.DIRECT

    @property
    def is_channel(self) -> bool:
        return self.kind == self.Kind.CHANNEL


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"

    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(db_default=Now())
    left_at = models.DateTimeField(null=True, blank=True)
    is_muted = models.BooleanField(default=False)
    last_read_seq = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="messenger_one_membership"),
        ]
        indexes = [models.Index(fields=["user", "left_at"], name="messenger_member_user_idx")]

    def __str__(self) -> str:
        return f"{self.user} in {self.conversation}"

    @property
    def is_active(self) -> bool:
        return self.left_at is None


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="messages")
    seq = models.BigIntegerField(help_text="Position in the conversation, from 1.")
    body = models.TextField(blank=True)
    html = models.TextField(blank=True, help_text="The body rendered and sanitised at write time.")
    client_id = models.UUIDField(null=True, blank=True)
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replies"
    )
    mentions_everyone = models.BooleanField(default=False)
    created_at = models.DateTimeField(db_default=Now())
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="messenger_message_seq_unique"),
            models.UniqueConstraint(
                fields=["author", "client_id"],
                condition=models.Q(client_id__isnull=False),
                name="messenger_message_client_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"Message {self.seq} in {self.conversation_id}"

    def get_absolute_url(self) -> str:
        return (
            f"{reverse('messenger:conversation', args=[self.conversation_id])}?around={self.seq}#m{self.pk}"
        )

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class MessageAttachment(models.Model):
    """A file shared with a message. Its bytes stay in the archive even when the
    message is deleted (the compliance purge removes them when retention ends)."""

    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="attachments")
    file = models.ForeignKey("archive.StoredFile", on_delete=models.PROTECT, related_name="attachments")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["message", "position"]
        constraints = [
            models.UniqueConstraint(fields=["message", "file"], name="messenger_attachment_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.file} on message {self.message_id}"


class Mention(models.Model):
    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="mentions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="mentions")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="messenger_mention_unique")]

    def __str__(self) -> str:
        return f"@{self.user} in {self.message}"


class Reaction(models.Model):
    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reactions")
    emoji = models.CharField(max_length=32)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "user", "emoji"], name="messenger_reaction_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.emoji} by {self.user}"


class MessageRevision(models.Model):
    """One version of a message's content: created, edited or deleted. Never changed."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        EDITED = "edited", "Edited"
        DELETED = "deleted", "Deleted"

    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="revisions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    body = models.TextField(blank=True, help_text="The content of this version (kept for deletions too).")
    # Nullable, so that adding the column never rebuilds the table (SQLite would
    # drop the append-only triggers with the old one).
    files = models.JSONField(
        null=True, blank=True, help_text="The attached files of this version: id, SHA-256, name, size, type."
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["message", "number"]
        constraints = [
            models.UniqueConstraint(fields=["message", "number"], name="messenger_revision_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} v{self.number} of message {self.message_id}"


class Event(models.Model):
    """The journal: one row per change, with a global, increasing id.

    Clients resume from an event id; compliance snapshots ranges of it.
    """

    class Type(models.TextChoices):
        MESSAGE = "message", "Message sent"
        MESSAGE_EDITED = "message_edited", "Message edited"
        MESSAGE_DELETED = "message_deleted", "Message deleted"
        REACTION_ADDED = "reaction_added", "Reaction added"
        REACTION_REMOVED = "reaction_removed", "Reaction removed"
        MEMBER_JOINED = "member_joined", "Member joined"
        MEMBER_LEFT = "member_left", "Member left"
        MEMBER_ADDED = "member_added", "Member added"
        MEMBER_REMOVED = "member_removed", "Member removed"
        ROLE_CHANGED = "role_changed", "Role changed"
        CONVERSATION_CREATED = "conversation_created", "Conversation created"
        RENAMED = "renamed", "Renamed"
        TOPIC_CHANGED = "topic_changed", "Topic changed"
        ARCHIVED = "archived", "Archived"
        EXTERNALS_CHANGED = "externals_changed", "External participants allowed or disallowed"

    id = models.BigAutoField(primary_key=True)
    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="events")
    type = models.CharField(max_length=24, choices=Type.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    revision = models.ForeignKey(
        MessageRevision, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The person a membership event is about.",
    )
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["conversation", "id"], name="messenger_event_conv_idx")]

    def __str__(self) -> str:
        return f"#{self.id} {self.type} in {self.conversation_id}"


class MailNotification(models.Model):
    """A message someone should hear of by email: a direct message or mention
    that arrived while they were away, or, for an external contact, every new
    message of their conversations. ``messenger.mail.notifications`` sends the
    due ones, batched per person and conversation, and marks them sent; one row
    per person and message, so a message is never mailed twice."""

    class Reason(models.TextChoices):
        DIRECT = "direct", "Direct message"
        MENTION = "mention", "Mention"
        EVERYONE = "everyone", "Mention of everyone"
        EXTERNAL = "external", "Relay to an external contact"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Deleting a message (the compliance purge) takes its pending notices with it.
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=10, choices=Reason.choices)
    created_at = models.DateTimeField(db_default=Now())
    due_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    skipped = models.BooleanField(default=False, help_text="Read in time, or the person switched mail off.")
    mail_message_id = models.CharField(max_length=250, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "message"], name="messenger_one_notification"),
        ]
        indexes = [
            models.Index(
                fields=["due_at"], condition=models.Q(sent_at__isnull=True), name="messenger_notice_due_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} to {self.user_id} of message {self.message_id}"


class InboundMail(models.Model):
    """Every mail that reached the reply address, and what became of it: posted
    or rejected with the reason the sender was told. The Message-ID is unique,
    so a mail delivered twice is posted once."""

    class Outcome(models.TextChoices):
        POSTED = "posted", "Posted"
        REJECTED = "rejected", "Rejected"

    mail_message_id = models.CharField(max_length=250, unique=True)
    sender = models.CharField(max_length=254, blank=True)
    recipient = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=250, blank=True)
    received_at = models.DateTimeField(db_default=Now())
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.CharField(max_length=250, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-received_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} mail from {self.sender}"
