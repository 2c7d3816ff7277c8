import zoneinfo

from django import forms
from django.contrib.auth.password_validation import password_validators_help_text_html

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


# --- Admin: bulk invitations ------------------------------------------------


class BulkInvitationForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="First line: column names. “email” is required; “name”, “job_title” and “department” "
        "are optional. Comma, semicolon or tab separated.",
    )
