"""Forms of the messenger's pages. They check the shape of what was posted;
the services decide whether it is allowed and whether it makes sense."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

# The reactions offered by the picker; the service accepts any emoji.
QUICK_REACTIONS = ("👍", "❤️", "😂", "🎉", "✅", "👀", "🙏", "😮")


class IdListField(forms.Field):
    """Any number of integer ids from checkboxes or a multi-select (``name=1&name=2``)."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {"invalid": "Pick people from the list."}

    def to_python(self, value: Any) -> list[int]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        try:
            return sorted({int(v) for v in values})
        except (TypeError, ValueError):
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None


class MessageForm(forms.Form):
    body = forms.CharField(strip=False, widget=forms.Textarea)
    # Rendered fresh with every page: posting the same form twice sends once.
    client_id = forms.UUIDField(required=False, widget=forms.HiddenInput)
    reply_to = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)


class MessageEditForm(forms.Form):
    body = forms.CharField(strip=False, widget=forms.Textarea(attrs={"rows": 4}))


class ReactionForm(forms.Form):
    emoji = forms.CharField(max_length=32)
    remove = forms.BooleanField(required=False)


class ChannelForm(forms.Form):
    name = forms.CharField(
        max_length=200,
        help_text="Lower case and short works best: #sales, #warehouse-nord.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. project-aurora", "autocomplete": "off"}),
    )
    topic = forms.CharField(
        max_length=1000,
        required=False,
        help_text="What the channel is about. Shown under its name.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    is_private = forms.TypedChoiceField(
        label="Who can find it",
        choices=[
            ("0", "Public: anyone in the company can find and join it"),
            ("1", "Private: only people who are added can see it"),
        ],
        coerce=lambda value: value == "1",
        initial="0",
        widget=forms.RadioSelect,
    )


class GroupForm(forms.Form):
    name = forms.CharField(
        max_length=200,
        required=False,
        help_text="Optional. Without one, the group is named after its members.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. Trade fair team", "autocomplete": "off"}),
    )
    members = IdListField(label="Members")


class NameForm(forms.Form):
    name = forms.CharField(max_length=200, required=False)


class TopicForm(forms.Form):
    topic = forms.CharField(max_length=1000, required=False)


class MembersForm(forms.Form):
    members = IdListField()


class MuteForm(forms.Form):
    muted = forms.BooleanField(required=False)


class AllowExternalForm(forms.Form):
    allowed = forms.BooleanField(required=False)


class ExternalContactForm(forms.Form):
    email = forms.EmailField(max_length=254)
    name = forms.CharField(max_length=150, required=False)


class SearchForm(forms.Form):
    q = forms.CharField(max_length=200, required=False)
    before = forms.IntegerField(required=False, min_value=1)


class DirectoryForm(forms.Form):
    q = forms.CharField(max_length=100, required=False)


class PageForm(forms.Form):
    """Which slice of a conversation to show: the latest, ``before`` a sequence
    number (scrolling back) or ``around`` one (a search hit)."""

    before = forms.IntegerField(required=False, min_value=1)
    around = forms.IntegerField(required=False, min_value=1)
    reply_to = forms.IntegerField(required=False, min_value=1)

    def before_seq(self) -> int | None:
        if not self.is_valid():
            return None
        if self.cleaned_data["around"] is not None:
            return int(self.cleaned_data["around"]) + 26
        before = self.cleaned_data["before"]
        return int(before) if before is not None else None
