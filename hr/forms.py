"""The admin forms of offboarding, reactivation and processing restriction."""

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User


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
