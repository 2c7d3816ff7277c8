"""The export forms: a conversation range, checked for shape only (the
service checks the rest)."""

from typing import Any, cast

from django import forms

from compliance.workspace import exports

_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
FORMAT_CHOICES = [
    ("mbox", "mbox (RFC 5322 mail, with attachments)"),
    ("jsonl", "JSON Lines (every field)"),
    ("pdf", "PDF transcript"),
]


class ExportForm(forms.Form):
    conversation = forms.TypedChoiceField(coerce=int, empty_value=None, label="Conversation")
    date_from = forms.DateField(required=False, label="From", widget=_DATE, help_text="First day included.")
    date_to = forms.DateField(required=False, label="Until", widget=_DATE, help_text="The last day included.")
    formats = forms.MultipleChoiceField(
        choices=FORMAT_CHOICES,
        initial=[value for value, _label in FORMAT_CHOICES],
        widget=forms.CheckboxSelectMultiple,
        help_text="The records themselves and a manifest of SHA-256 sums are always included.",
    )

    def __init__(self, *args: Any, conversations: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["conversation"]).choices = [
            ("", "Choose a conversation"),
            *((pk, f"{title} (no. {pk})") for pk, title in conversations),
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end of the range comes before its start.")
        return data

    def parameters(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "kind": "conversation",
            "conversation_id": data["conversation"],
            "from": data["date_from"].isoformat() if data["date_from"] else None,
            "to": data["date_to"].isoformat() if data["date_to"] else None,
        }


def search_export_parameters(criteria: Any) -> dict[str, Any]:
    """What a search export covers, from the search form's criteria."""
    return {"kind": "search", "search": exports.search_parameters(criteria)}
