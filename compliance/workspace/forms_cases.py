"""Forms of the cases, holds and audit-trail pages. They check the shape of
what was posted and find the people and conversations it names; the services
decide whether the act is allowed."""

from datetime import date
from typing import Any

from django import forms

from accounts.models import User
from compliance.models import AuditEvent, Case
from messenger.models import Conversation

SYSTEM = "system"


class CaseForm(forms.Form):
    name = forms.CharField(
        max_length=200,
        help_text="How the case is known, e.g. “Tax audit 2026” or a court file number.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    legal_basis = forms.CharField(
        label="Legal basis",
        help_text="Why this case may look into the archive: the law, the request, the decision.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    scope = forms.CharField(
        required=False,
        help_text="What it covers: people, conversations, a period.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class CaseCloseForm(forms.Form):
    reason = forms.CharField(
        help_text="Why the case ends, e.g. “Audit report delivered”. Kept in the audit trail.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )


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


class AuditFilterForm(forms.Form):
    """The audit trail's filters (GET). Keyset cursors: ``before`` pages to
    older events, ``after`` to newer ones."""

    kind = forms.ChoiceField(required=False, choices=[("", "Any act"), *AuditEvent.Kind.choices])
    actor = forms.CharField(
        required=False,
        label="Who",
        help_text="An email address, or “system” for the archive's own acts.",
        widget=forms.TextInput(attrs={"list": "audit-actors", "autocomplete": "off"}),
    )
    case = forms.ModelChoiceField(
        queryset=Case.objects.order_by("-pk"),
        required=False,
        empty_label="Any case",
        error_messages={"invalid_choice": "There is no such case."},
    )
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    date_to = forms.DateField(
        required=False, label="Until", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def clean_actor(self) -> User | str | None:
        value = self.cleaned_data["actor"].strip()
        if not value:
            return None
        if value.lower() == SYSTEM:
            return SYSTEM
        person = User.objects.filter(email__iexact=value).first()
        if person is None:
            raise forms.ValidationError("No one has this email address.")
        return person

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start: date | None = data.get("date_from")
        end: date | None = data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end lies before the start.")
        return data
