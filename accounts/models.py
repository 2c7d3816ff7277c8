import hashlib
import zoneinfo
from datetime import datetime
from typing import ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone.")


class Department(models.Model):
    name = models.CharField(max_length=120, unique=True)
    head = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Takes over a leaver's groups and channels unless HR picks someone else.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> "User":
        # Logins are case-insensitive: addresses are stored in lower case.
        return self.get(email=(username or "").strip().lower())

    def create_user(self, email: str, password: str | None = None, **fields: object) -> "User":
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=email.strip().lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: object) -> "User":
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class EmailNotifications(models.TextChoices):
    OFF = "off", "Never"
    IMMEDIATELY = "immediately", "Immediately"
    DELAYED = "delayed", "After a few minutes, if still unread"
    DIGEST = "digest", "Once a day, in a digest"


class User(AbstractBaseUser, PermissionsMixin):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        EXTERNAL = "external", "External contact"
        INVITED = "invited", "Invited"
        DEACTIVATED = "deactivated", "Deactivated"
        OFFBOARDED = "offboarded", "Offboarded"

    email = models.EmailField("email address", unique=True)
    display_name = models.CharField(max_length=150, blank=True)
    job_title = models.CharField(max_length=150, blank=True)
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    phone = models.CharField(max_length=40, blank=True)
    avatar = models.ImageField(upload_to="avatars/", blank=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(
        default=False, help_text="May sign in to the admin (HR and administrators)."
    )
    date_joined = models.DateTimeField(default=timezone.now)
    offboarded_at = models.DateTimeField(null=True, blank=True)
    offboarded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    processing_restricted_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Erasure requested while retention runs (GDPR Art. 17(3)(b), 18): hidden from chat, "
        "directory and search; erased when the last record naming them is purged.",
    )
    erased_at = models.DateTimeField(null=True, blank=True)
    send_read_receipts = models.BooleanField(
        default=True, help_text="Let others see when you have read their messages."
    )
    is_external = models.BooleanField(
        "external contact",
        default=False,
        editable=False,
        help_text="A client or partner who takes part in conversations by email. Never signs in.",
    )
    email_notifications = models.CharField(
        max_length=12,
        choices=EmailNotifications.choices,
        default=EmailNotifications.DELAYED,
        help_text="When to mail direct messages and mentions that arrived while you were away.",
    )
    email_notification_delay = models.PositiveSmallIntegerField(
        "minutes before mailing",
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
    )

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["display_name", "email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
            # External contacts take part by email only: no login path may open for them.
            models.CheckConstraint(
                condition=~models.Q(is_external=True, is_active=True), name="accounts_external_never_active"
            ),
        ]
        permissions = [
            ("offboard_user", "Can offboard and reactivate people"),
            ("restrict_processing", "Can restrict a person's processing (erasure request)"),
        ]

    def __str__(self) -> str:
        if self.erased_at is not None:
            return "Erased person"
        if self.processing_restricted_at is not None:
            return "Restricted person"
        return self.display_name or self.email

    def clean(self) -> None:
        super().clean()
        self.email = self.email.strip().lower()

    def get_full_name(self) -> str:
        return self.display_name or self.email

    def get_short_name(self) -> str:
        return (self.display_name or self.email).split(" ")[0]

    @property
    def status(self) -> str:
        if self.is_external:
            return self.Status.EXTERNAL
        if self.offboarded_at is not None:
            return self.Status.OFFBOARDED
        if self.is_active:
            return self.Status.ACTIVE
        if self.last_login is None:
            return self.Status.INVITED
        return self.Status.DEACTIVATED

    @property
    def chat_name(self) -> str:
        """The name chat and mail show: an external contact is marked as such."""
        return f"{self} (external)" if self.is_external else str(self)

    @property
    def initials(self) -> str:
        if self.erased_at is not None or self.processing_restricted_at is not None:
            return "?"
        words = [w for w in (self.display_name or self.email).replace(".", " ").split() if w]
        return "".join(w[0] for w in words[:2]).upper() or "?"

    @property
    def handle(self) -> str:
        """What colleagues type after @ to mention this person."""
        return self.email.split("@", 1)[0]

    def has_role(self, role: str) -> bool:
        return self.groups.filter(name=role).exists()


class Invitation(models.Model):
    """A one-time, expiring link that lets an invited person set a password.

    Only a hash of the token is stored: the link in the mail is the only copy.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    invited_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="invitations_sent"
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation for {self.email}"

    @staticmethod
    def hash_token(token: str) -> str:
        """What is stored of a link's token: only its SHA-256."""
        return hashlib.sha256(token.encode()).hexdigest()

    def is_usable(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now

    @property
    def state(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


class RoleGrant(models.Model):
    """A role an administrator granted that waits for a second administrator.

    With the four-eyes rule (``KONTOR_AUDIT_FOUR_EYES``) a new Auditor or Data
    protection role takes effect only when another administrator confirms it
    (``accounts.services.role_grant_confirm``); until then the person has not
    got it. Removing a role never waits.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="role_grants")
    role = models.CharField(max_length=40)
    requested_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    confirmed_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "role"],
                condition=models.Q(confirmed_at=None, cancelled_at=None),
                name="accounts_one_pending_grant_per_role",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} for {self.user}"

    @property
    def state(self) -> str:
        if self.confirmed_at is not None:
            return "confirmed"
        if self.cancelled_at is not None:
            return "cancelled"
        return "pending"
