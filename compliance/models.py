"""The compliance archive. Its rules, enforced where written:

1. A record is written once, by ``compliance.services.snapshot_conversation``,
   and never changed: there is no update service, ``save`` on an existing row
   and ``delete`` raise, the admin is read-only, and database triggers refuse
   UPDATE and DELETE (migration 0002), on SQLite and on PostgreSQL.
2. Records of one conversation form a hash chain: each holds the SHA-256 of its
   canonical JSON and the hash of the record before it, so any change, removal
   or reordering is found by ``manage.py verify_archive``.
3. A record's content (``RecordContent``) may be deleted only after its
   ``retain_until`` and only by the purge; the chain entry stays.
4. Times come from the database clock, never from a client.
5. Deleting a person, conversation or message never reaches a record (PROTECT).
"""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Now

GENESIS_HASH = "0" * 64


class RetentionPolicy(models.Model):
    class RecordClass(models.TextChoices):
        BUSINESS_LETTER = "business_letter", "Business correspondence"
        VOUCHER = "voucher", "Accounting voucher"
        BOOKS = "books", "Books and records"
        GENERAL = "general", "General"

    name = models.CharField(max_length=120, unique=True)
    record_class = models.CharField(max_length=20, choices=RecordClass.choices)
    years = models.PositiveSmallIntegerField(default=0)
    days = models.PositiveIntegerField(default=0)
    from_year_end = models.BooleanField(
        default=True, help_text="The period starts at the end of the calendar year the record was made in."
    )
    legal_basis = models.CharField(max_length=200, blank=True)
    is_default = models.BooleanField(default=False)
    purge_live = models.BooleanField(
        default=False,
        help_text="When a record's retention ends, also delete the live messages and files it covered.",
    )
    recording_notice = models.BooleanField(
        default=False,
        help_text="A regulated scope (MiFID II, SEC 17a-4): every participant sees that the conversation "
        "is recorded and archived.",
    )

    class Meta:
        verbose_name_plural = "retention policies"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="compliance_one_default_policy",
            ),
            models.CheckConstraint(
                condition=models.Q(years__gt=0) | models.Q(days__gt=0), name="compliance_policy_has_period"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PolicyAssignment(models.Model):
    """A policy for a department or a conversation; the default policy covers the
    rest of the company. The most specific assignment wins (conversation, then
    the departments of the people in a record, longest period first)."""

    policy = models.ForeignKey(RetentionPolicy, on_delete=models.PROTECT, related_name="assignments")
    department = models.OneToOneField(
        "accounts.Department", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    conversation = models.OneToOneField(
        "messenger.Conversation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    assigned_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    assigned_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(department__isnull=False, conversation__isnull=True)
                | models.Q(department__isnull=True, conversation__isnull=False),
                name="compliance_assignment_one_scope",
            )
        ]

    def __str__(self) -> str:
        return f"{self.policy} for {self.department or self.conversation}"


class SnapshotCursor(models.Model):
    """How far a conversation's journal is archived. Locked while a snapshot runs."""

    conversation = models.OneToOneField(
        "messenger.Conversation", on_delete=models.PROTECT, related_name="snapshot_cursor"
    )
    last_event_id = models.BigIntegerField(default=0)
    last_seq = models.PositiveIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"Cursor of conversation {self.conversation_id} at event {self.last_event_id}"


class ImmutableModel(models.Model):
    """Rows are written once; the database refuses the rest as well."""

    class Meta:
        abstract = True

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise ValidationError(f"{type(self).__name__} rows cannot be changed.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ValidationError(f"{type(self).__name__} rows cannot be deleted.")


class RetentionRecord(ImmutableModel):
    """One link of a conversation's chain: a range of its journal, sealed by hash."""

    conversation = models.ForeignKey("messenger.Conversation", on_delete=models.PROTECT, related_name="+")
    seq = models.PositiveIntegerField(help_text="Position in the conversation's chain, from 1.")
    first_event_id = models.BigIntegerField()
    last_event_id = models.BigIntegerField()
    event_count = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, unique=True)
    hmac = models.CharField(max_length=64, blank=True)
    previous_hash = models.CharField(max_length=64)
    policy = models.ForeignKey(RetentionPolicy, on_delete=models.PROTECT, related_name="+")
    retain_until = models.DateField()
    period_start = models.DateField(help_text="Day of the first archived event (database clock).")
    period_end = models.DateField(help_text="Day of the last archived event (database clock).")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="compliance_chain_position_unique"),
            models.UniqueConstraint(
                fields=["conversation", "previous_hash"], name="compliance_chain_link_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"Record {self.seq} of conversation {self.conversation_id}"


class RecordContent(ImmutableModel):
    """The canonical JSON of a record; the purge may delete it after retention."""

    record = models.OneToOneField(RetentionRecord, on_delete=models.PROTECT, related_name="content")
    canonical_json = models.TextField()

    def __str__(self) -> str:
        return f"Content of {self.record_id}"


class RecordPerson(ImmutableModel):
    """Who appears in a record (author, actor, member): what a custodian hold matches."""

    record = models.ForeignKey(RetentionRecord, on_delete=models.PROTECT, related_name="people")
    user = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["record", "user"], name="compliance_record_person_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.record_id}"


class PurgeEntry(ImmutableModel):
    """The chain keeps a purged record: its hash stays, its content is gone."""

    record = models.OneToOneField(RetentionRecord, on_delete=models.PROTECT, related_name="purge")
    sha256 = models.CharField(max_length=64)
    purged_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"Purge of {self.record_id}"


class RetentionExtension(ImmutableModel):
    """A record kept longer than its policy said: an authority's request, an open
    tax audit, a longer policy. Extensions only ever add time; the record's
    retention is the latest of its own date and its extensions."""

    record = models.ForeignKey(RetentionRecord, on_delete=models.PROTECT, related_name="extensions")
    retain_until = models.DateField()
    reason = models.TextField()
    actor = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"{self.record_id} kept until {self.retain_until}"


class Seal(ImmutableModel):
    """A daily seal over every chain head, itself a chain, anchored outside the
    database (a copy in the archive storage, and an RFC 3161 timestamp when a
    timestamp authority is configured). A removed or rewritten chain no longer
    matches the heads its seals name."""

    seq = models.PositiveIntegerField(unique=True)
    previous_hash = models.CharField(max_length=64, unique=True)
    sha256 = models.CharField(max_length=64, unique=True)
    hmac = models.CharField(max_length=64, blank=True)
    canonical_json = models.TextField()
    chains = models.PositiveIntegerField()
    tsa_url = models.CharField(max_length=500, blank=True)
    tsa_token = models.TextField(blank=True, help_text="The RFC 3161 timestamp token, base64 DER.")
    storage_name = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"Seal {self.seq}"


class LegalHold(models.Model):
    """Stops every deletion it covers, even after retention ends.

    Each criterion given must match (a custodian in a date range, say); at least
    one is required. Only ``released_at``/``released_by`` ever change, through
    ``compliance.services.hold_release``, and both acts are audit events.
    """

    name = models.CharField(max_length=200, help_text="The case, e.g. tax audit 2026 or a court case number.")
    reason = models.TextField()
    custodian = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="legal_holds"
    )
    conversation = models.ForeignKey(
        "messenger.Conversation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    date_from = models.DateField(null=True, blank=True)
    date_to = models.DateField(null=True, blank=True)
    set_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    set_at = models.DateTimeField(db_default=Now())
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(custodian__isnull=False)
                | models.Q(conversation__isnull=False)
                | models.Q(date_from__isnull=False)
                | models.Q(date_to__isnull=False),
                name="compliance_hold_has_scope",
            )
        ]

    def __str__(self) -> str:
        return self.name


class AuditEvent(ImmutableModel):
    """The append-only log of every compliance-relevant act."""

    class Kind(models.TextChoices):
        SNAPSHOT = "snapshot", "Snapshot"
        POLICY_CHANGED = "policy_changed", "Policy changed"
        HOLD_SET = "hold_set", "Legal hold set"
        HOLD_RELEASED = "hold_released", "Legal hold released"
        RECORD_PURGED = "record_purged", "Record purged"
        VERIFIED = "verified", "Archive verified"
        RETENTION_EXTENDED = "retention_extended", "Retention extended"
        SEALED = "sealed", "Chain heads sealed"
        LIVE_PURGED = "live_purged", "Live messages and files deleted after retention"
        PROCESSING_RESTRICTED = "processing_restricted", "Processing restricted (erasure request)"
        PERSON_ERASED = "person_erased", "Person erased after retention"

    kind = models.CharField(max_length=30, choices=Kind.choices)
    actor = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    detail = models.JSONField(default=dict)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.created_at}"
