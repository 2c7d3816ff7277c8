import zoneinfo

from django import forms
from django.contrib.auth.password_validation import password_validators_help_text_html

from accounts.models import User


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

    @classmethod
    def for_user(cls, user: User, **kwargs: object) -> "ProfileForm":
        initial = {
            "display_name": user.display_name,
            "job_title": user.job_title,
            "phone": user.phone,
            "time_zone": user.time_zone,
            "send_read_receipts": user.send_read_receipts,
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
