"""The audit trail's filter form (GET): the kind of act, who (a person or
the archive itself), the case, the days, and the keyset cursors."""

from datetime import date
from typing import Any

from django import forms

from accounts.models import User
from compliance.models import AuditEvent, Case
from compliance.workspace.trail import SYSTEM


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
