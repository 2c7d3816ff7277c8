"""What HR's offboarding keeps: scheduled offboardings and the immutable report.

Both models lived in ``accounts`` until issue 17 moved them here; they keep
their tables (``db_table``), constraint names and database guards, so a running
installation migrated without copying a row (``hr`` migration 0001).
"""

import hashlib
import json
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Now


class ScheduledOffboarding(models.Model):
    """An offboarding HR set for a later time; the task ``accounts.offboard_due``
    (Celery beat, every minute; ``hr.tasks``) carries it out then. Until then the person works as
    before. At most one is pending per person."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="scheduled_offboardings"
    )
    effective_at = models.DateTimeField(help_text="When the account is closed.")
    successor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Takes over the leaver's groups and channels.",
    )
    hold_reason = models.TextField(
        blank=True, help_text="When given, a legal hold on the leaver as custodian is set with this reason."
    )
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(db_default=Now())
    done_at = models.DateTimeField(null=True, blank=True)
    report = models.ForeignKey(
        "hr.OffboardingReport", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    error = models.TextField(blank=True, help_text="Why the last attempt failed (it is tried again).")

    class Meta:
        db_table = "accounts_scheduledoffboarding"
        ordering = ["effective_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(done_at__isnull=True, cancelled_at__isnull=True),
                name="accounts_one_pending_offboarding",
            ),
        ]
        indexes = [
            models.Index(
                fields=["effective_at"],
                condition=models.Q(done_at__isnull=True, cancelled_at__isnull=True),
                name="accounts_offboarding_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Offboarding of {self.user} on {self.effective_at:%Y-%m-%d %H:%M}"

    @property
    def state(self) -> str:
        if self.done_at is not None:
            return "done"
        if self.cancelled_at is not None:
            return "cancelled"
        return "pending"


class OffboardingReport(models.Model):
    """What an offboarding did, written once and never changed.

    Its canonical JSON (``compliance.records.canonical_json``) is the report;
    ``sha256`` is its hash, as for retention records. ``save`` on an existing
    row and ``delete`` raise, the admin is read-only, and database triggers
    (``accounts`` migration 0006, which made the table) refuse UPDATE and DELETE on SQLite and PostgreSQL. The
    columns beside the JSON repeat a few of its facts for the admin's list.
    """

    FORMAT = "kontor.offboarding-report/1"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="offboarding_reports"
    )
    offboarded_at = models.DateTimeField()
    offboarded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    successor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    hold = models.ForeignKey(
        "compliance.LegalHold", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    conversations = models.PositiveIntegerField()
    messages = models.PositiveIntegerField()
    files = models.PositiveIntegerField()
    records = models.PositiveIntegerField(help_text="Retention records of their conversations.")
    canonical_json = models.TextField()
    sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "accounts_offboardingreport"
        ordering = ["-offboarded_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "offboarded_at"], name="accounts_one_report_per_offboarding"
            ),
        ]

    def __str__(self) -> str:
        return f"Offboarding report of {self.user} ({self.offboarded_at:%Y-%m-%d})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValidationError("Offboarding reports cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValidationError("Offboarding reports cannot be deleted.")

    @property
    def content(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.canonical_json)
        return data

    def hash_matches(self) -> bool:
        """True when the stored JSON still hashes to ``sha256``."""
        return hashlib.sha256(self.canonical_json.encode("utf-8")).hexdigest() == self.sha256
