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


class Case(models.Model):
    """An auditor's matter: every search, view and export belongs to one.

    With the four-eyes rule (``KONTOR_AUDIT_FOUR_EYES``) a second auditor must
    approve a case before its results can be opened. Opening, approving and
    closing are audit events; only ``compliance.workspace.cases`` changes a case.
    """

    name = models.CharField(max_length=200)
    legal_basis = models.TextField(help_text="Why this case may look into the archive: the legal basis.")
    scope = models.TextField(blank=True, help_text="What it covers: people, conversations, a period.")
    opened_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField(db_default=Now())
    approved_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-pk"]

    def __str__(self) -> str:
        return self.name


class ArchivedMessage(models.Model):
    """The search index of the archive: one row per message version in a record.

    Derived from the records' content when they are written (never from the
    live tables), removed with a record's content by the purge. Auditors search
    this, never the chat. On PostgreSQL the table also has ``search_document``,
    the stored full-text vector of body and attachment text (migration 0007;
    not a field here, the database computes it).
    """

    record = models.ForeignKey(RetentionRecord, on_delete=models.PROTECT, related_name="+")
    conversation = models.ForeignKey("messenger.Conversation", on_delete=models.PROTECT, related_name="+")
    conversation_title = models.CharField(
        max_length=300, blank=True, help_text="The conversation's name (or its members) as captured."
    )
    event_id = models.BigIntegerField(help_text="The journal event that carried this version.")
    message_id = models.BigIntegerField(help_text="The live message's id (the message may be gone).")
    message_seq = models.BigIntegerField()
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, help_text="The revision's kind: created, edited or deleted.")
    author = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    author_name = models.CharField(max_length=200, help_text="As captured in the record.")
    author_department = models.CharField(max_length=120, blank=True)
    body = models.TextField(blank=True)
    file_text = models.TextField(blank=True, help_text="Text of the attached files at capture.")
    files = models.JSONField(default=list)
    has_files = models.BooleanField(default=False)
    file_types = models.CharField(max_length=500, blank=True, help_text="Space-separated content types.")
    at = models.DateTimeField(help_text="When this version was made (database clock).")

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message_id", "version"], name="compliance_archived_version_unique"
            )
        ]
        indexes = [
            models.Index(fields=["at", "id"], name="compliance_archived_at"),
            models.Index(fields=["conversation", "at"], name="compliance_archived_conv_at"),
            models.Index(fields=["author", "at"], name="compliance_archived_author_at"),
            # "With attachments" and file types: a few percent of the rows.
            models.Index(
                fields=["at", "id"], condition=models.Q(has_files=True), name="compliance_archived_files_at"
            ),
        ]

    def __str__(self) -> str:
        return f"Message {self.message_id} version {self.version}"


class Export(models.Model):
    """An auditor's export job: a ZIP (mbox, JSON Lines, PDF, manifest) built
    by a Celery task, with its progress; only ``compliance.workspace.exports``
    changes it."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="exports")
    requested_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(db_default=Now())
    parameters = models.JSONField(default=dict, help_text="What to export: a search or a conversation range.")
    formats = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    items = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    file_key = models.CharField(max_length=300, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When a worker claimed it.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]

    def __str__(self) -> str:
        return f"Export {self.pk} of {self.case}"


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
        CASE_OPENED = "case_opened", "Case opened"
        CASE_APPROVED = "case_approved", "Case approved (four eyes)"
        CASE_CLOSED = "case_closed", "Case closed"
        SEARCHED = "searched", "Archive searched"
        VIEWED = "viewed", "Archive viewed"
        EXPORT_REQUESTED = "export_requested", "Export requested"
        EXPORT_DOWNLOADED = "export_downloaded", "Export downloaded"
        FILE_DOWNLOADED = "file_downloaded", "Archived file downloaded"
        AUDIT_LOG_VIEWED = "audit_log_viewed", "Audit log viewed"
        AUDIT_LOG_EXPORTED = "audit_log_exported", "Audit log exported"
        OFFBOARDED = "offboarded", "Person offboarded"
        REACTIVATED = "reactivated", "Person reactivated"
        ROLES_CHANGED = "roles_changed", "Roles changed"
        ROLE_GRANT_REQUESTED = "role_grant_requested", "Role granted, awaiting a second administrator"
        ROLE_GRANT_CONFIRMED = "role_grant_confirmed", "Role grant confirmed (four eyes)"
        ROLE_GRANT_CANCELLED = "role_grant_cancelled", "Role grant cancelled"

    kind = models.CharField(max_length=30, choices=Kind.choices)
    actor = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    detail = models.JSONField(default=dict)
    case = models.ForeignKey(
        Case, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events"
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.created_at}"
