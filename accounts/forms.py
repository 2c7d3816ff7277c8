import zoneinfo
from typing import Any

from django import forms
from django.contrib.auth.password_validation import password_validators_help_text_html
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import EmailNotifications, User


def _time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


class ProfileForm(forms.Form):
    display_name = forms.CharField(max_length=150, label="Name shown to colleagues")
    job_title = forms.CharField(max_length=150, required=False)
    phone = forms.CharField(max_length=40, required=False)
    time_zone = forms.ChoiceField(choices=_time_zone_choices)
    avatar = forms.ImageField(required=False, label="Profile picture", help_text="PNG, JPEG, GIF or WebP.")
    remove_avatar = forms.BooleanField(required=False, label="Remove my picture")
    send_read_receipts = forms.BooleanField(
        required=False,
        label="Let others see when I have read their messages",
        help_text="When this is off, you do not show up under “Seen by”.",
    )
    # Not required: a form that leaves them out changes neither.
    email_notifications = forms.ChoiceField(
        required=False,
        choices=EmailNotifications.choices,
        label="Email me direct messages and mentions I missed",
        help_text="Reply to such a mail to answer in the conversation.",
    )
    email_notification_delay = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=24 * 60,
        label="Minutes to wait before mailing (when “after a few minutes”)",
    )

    def clean_email_notifications(self) -> str | None:
        return self.cleaned_data.get("email_notifications") or None

    @classmethod
    def for_user(cls, user: User, **kwargs: object) -> "ProfileForm":
        initial = {
            "display_name": user.display_name,
            "job_title": user.job_title,
            "phone": user.phone,
            "time_zone": user.time_zone,
            "send_read_receipts": user.send_read_receipts,
            "email_notifications": user.email_notifications,
            "email_notification_delay": user.email_notification_delay,
        }
        return cls(initial=initial, **kwargs)  # type: ignore[arg-type]


class InvitationAcceptForm(forms.Form):
    display_name = forms.CharField(max_length=150, label="Your name")
    password1 = forms.CharField(
        label="Choose a password",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validators_help_text_html(),
        strip=False,
    )
    password2 = forms.CharField(
        label="Repeat the password",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        strip=False,
    )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return data


# --- Admin: offboarding, reactivation, restriction, bulk invitations ----------


class OffboardForm(forms.Form):
    """What applies to everyone offboarded in one go (successors are per person)."""

    when = forms.ChoiceField(
        choices=[("now", "Now"), ("later", "At a later time")],
        widget=forms.RadioSelect,
        initial="now",
        label="Effective",
    )
    effective_at = forms.DateTimeField(
        required=False,
        label="Date and time",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="In your own time zone. Until then the person works as before.",
    )
    hold = forms.BooleanField(required=False, label="Set a legal hold on them as custodian")
    hold_reason = forms.CharField(
        required=False,
        label="Reason for the hold",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="E.g. the court case or audit it is for. Nothing that names them is deleted while it runs.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("when") == "later":
            effective_at = data.get("effective_at")
            if effective_at is None:
                self.add_error("effective_at", "Give the date and time.")
            elif effective_at <= timezone.now():
                self.add_error("effective_at", "This time has passed: choose “Now” or a later time.")
        else:
            data["effective_at"] = None
        if data.get("hold") and not (data.get("hold_reason") or "").strip():
            self.add_error("hold_reason", "A legal hold needs a reason.")
        return data


class SuccessorForm(forms.Form):
    successor = forms.ModelChoiceField(
        queryset=User.objects.none(),
        required=False,
        empty_label="Nobody in particular (each passes to its longest-standing member)",
    )

    def __init__(self, *args: Any, candidates: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["successor"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = candidates


class ReactivateForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept in the audit log, e.g. “returns from parental leave”.",
    )


class RestrictProcessingForm(forms.Form):
    request = forms.CharField(
        max_length=200,
        label="Request reference",
        help_text="The erasure request's reference (ticket, letter or mail), kept in the audit log.",
    )
    legal_basis = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why erasure waits. Leave empty for the default "
        "(GDPR Art. 17(3)(b), (e); HGB §257, AO §147).",
    )


class BulkInvitationForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="First line: column names. “email” is required; “name”, “job_title” and “department” "
        "are optional. Comma, semicolon or tab separated.",
    )
