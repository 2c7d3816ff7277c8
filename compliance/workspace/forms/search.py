"""The search form: words and every filter, checked for shape only; the
choices (people, conversations, departments) are the archive's own."""

from typing import Any, cast

from django import forms
from django.utils import timezone

from compliance.workspace import search

# Attachment types an auditor looks for; a value ending in "/" is a family.
FILE_TYPES = [
    ("", "Any type"),
    ("application/pdf", "PDF"),
    ("image/", "Picture"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "Word document (.docx)"),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "Excel workbook (.xlsx)"),
    ("application/vnd.openxmlformats-officedocument.presentationml.presentation", "PowerPoint (.pptx)"),
    ("application/vnd.oasis.opendocument.text", "OpenDocument text (.odt)"),
    ("application/vnd.oasis.opendocument.spreadsheet", "OpenDocument spreadsheet (.ods)"),
    ("text/csv", "CSV"),
    ("text/plain", "Plain text"),
]
_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class SearchForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=search.QUERY_MAX,
        label="Words",
        help_text='Every word must occur. "Quoted words" form a phrase, OR between words allows either, '
        "-word excludes.",
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off", "autofocus": True}),
    )
    participant = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        help_text="Sender, or member of the conversation at the time.",
    )
    conversation = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    department = forms.ChoiceField(required=False, help_text="The sender's department at the time.")
    date_from = forms.DateField(required=False, label="From", widget=_DATE)
    date_to = forms.DateField(required=False, label="Until", widget=_DATE)
    file_type = forms.ChoiceField(required=False, label="File type", choices=FILE_TYPES)
    has_files = forms.BooleanField(required=False, label="With attachments only")
    all_versions = forms.BooleanField(
        required=False,
        label="Include edited and deleted versions",
        help_text="Without it, only each message's last version, and no deleted messages.",
    )

    def __init__(self, *args: Any, choices: search.Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["participant"]).choices = [("", "Anyone"), *choices.participants]
        cast(forms.ChoiceField, self.fields["conversation"]).choices = [
            ("", "Any conversation"),
            *((pk, f"{title} (no. {pk})") for pk, title in choices.conversations),
        ]
        cast(forms.ChoiceField, self.fields["department"]).choices = [
            ("", "Any department"),
            *((name, name) for name in choices.departments),
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end of the range comes before its start.")
        return data

    def criteria(self) -> search.Criteria:
        data = self.cleaned_data
        return search.Criteria(
            q=" ".join(data["q"].split()),
            participant_id=data["participant"],
            conversation_id=data["conversation"],
            department=data["department"],
            date_from=data["date_from"],
            date_to=data["date_to"],
            has_files=data["has_files"],
            file_type=data["file_type"],
            all_versions=data["all_versions"],
            time_zone=timezone.get_current_timezone_name(),
        )
