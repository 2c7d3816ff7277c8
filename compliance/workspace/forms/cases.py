"""Forms of cases: opening one (name, legal basis, scope) and closing it
(the reason). They check the shape of what was posted; ``cases`` decides
whether the act is allowed."""

from django import forms


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
