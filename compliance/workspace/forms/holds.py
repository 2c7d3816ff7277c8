"""Forms of legal holds: setting one (who, which conversation, which
period) and releasing it. They check the shape and find the person and the
conversation named; ``compliance.services`` decides the rest."""

from typing import Any

from django import forms

from accounts.models import User
from messenger.models import Conversation


class _EmailUserField(forms.ModelChoiceField):
    """A person named by email address."""

    widget = forms.EmailInput(attrs={"autocomplete": "off"})
    default_error_messages = {"invalid_choice": "No one has this email address."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(queryset=User.objects.all(), to_field_name="email", **kwargs)

    def to_python(self, value: Any) -> Any:
        return super().to_python(value.strip().lower() if isinstance(value, str) else value)


class HoldForm(forms.Form):
    name = forms.CharField(
        max_length=200,
        help_text="The matter it serves, e.g. “Tax audit 2026” or “Court case 17 O 42/26”.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    custodian = _EmailUserField(
        required=False,
        help_text="Everything this person wrote or was a member of. Their email address.",
    )
    conversation = forms.ModelChoiceField(
        queryset=Conversation.objects.all(),
        required=False,
        label="Conversation number",
        help_text="The number of a conversation, as the workspace shows it.",
        widget=forms.NumberInput(attrs={"min": 1}),
        error_messages={"invalid_choice": "There is no conversation with this number."},
    )
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    date_to = forms.DateField(
        required=False, label="Until", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end lies before the start.")
        return data


class HoldReleaseForm(forms.Form):
    reason = forms.CharField(
        help_text="Why the hold ends, e.g. “Judgment final”. Kept in the audit trail.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
