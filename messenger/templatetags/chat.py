"""Template tags of the messenger's pages: the sidebar, and small formatting helpers."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from html import unescape
from typing import Any

from django import template
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join, strip_tags
from django.utils.safestring import SafeString

from accounts.models import User
from messenger import presence, selectors
from messenger.forms import QUICK_REACTIONS
from messenger.selectors import SidebarItem

register = template.Library()


@dataclass
class SidebarSection:
    key: str
    title: str
    items: list[SidebarItem] = field(default_factory=list)


def sidebar_sections(items: list[SidebarItem]) -> list[SidebarSection]:
    """Channels, groups and direct messages, each most recent first (as given)."""
    sections = {
        "channel": SidebarSection("channel", "Channels"),
        "group": SidebarSection("group", "Groups"),
        "direct": SidebarSection("direct", "Direct messages"),
    }
    for item in items:
        sections[item.kind].items.append(item)
    return list(sections.values())


@register.inclusion_tag("messenger/_sidebar.html", takes_context=True)
def sidebar(context: template.Context) -> dict[str, Any]:
    """The person's conversations (2 queries; none if the view loaded them as ``sidebar_items``)."""
    request = context["request"]
    user: User = request.user
    items: list[SidebarItem] | None = context.get("sidebar_items")
    if items is None:
        items = selectors.sidebar_for_user(user=user)
    partner_ids = [item.partner.pk for item in items if item.partner is not None]
    return {
        "sections": sidebar_sections(items),
        "current_id": context.get("conversation_id"),
        "online_ids": presence.online_user_ids(partner_ids) if partner_ids else set(),
        "user": user,
    }


@register.simple_tag(takes_context=True)
def journal_position(context: template.Context) -> int:
    """The newest journal id, from which the page's socket resumes.

    Views that load data first pass ``event_id``, read *before* their own
    queries: an event that lands in between is then replayed (and dropped as a
    duplicate) rather than missed.
    """
    if context.get("event_id") is not None:
        return int(context["event_id"])
    return selectors.latest_event_id()


@register.filter
def day_label(value: date | datetime | None) -> str:
    """ "Today", "Yesterday", "Monday, 3 March" or "3 March 2024"."""
    if value is None:
        return ""
    day = timezone.localtime(value).date() if isinstance(value, datetime) else value
    today = timezone.localdate()
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    if today - day < timedelta(days=7):
        return date_format(day, "l, j F")
    if day.year == today.year:
        return date_format(day, "j F")
    return date_format(day, "j F Y")


@register.filter
def plain_text(html: str) -> str:
    """A message's rendered HTML as plain text (for quotes and previews); escaped again on output."""
    return unescape(strip_tags(html or "")).strip()


@register.filter
def user_ids(people: list[User]) -> str:
    return " ".join(str(person.pk) for person in people)


@register.filter
def hue(person: User | int | None) -> str:
    """The avatar colour of a person: the last digit of the id (as includes/avatar.html)."""
    pk = person if isinstance(person, int) else getattr(person, "pk", 0)
    return str(pk or 0)[-1]


@register.simple_tag
def icon(name: str) -> SafeString:
    """An icon from the page's sprite (messenger/_icons.html, included once by the layout)."""
    return format_html(
        '<svg class="icon" aria-hidden="true" focusable="false"><use href="#i-{}"></use></svg>', name
    )


@register.simple_tag
@cache
def quick_reaction_buttons() -> SafeString:
    """The reaction picker's buttons, the same on every row (drawn once per process)."""
    return format_html_join(
        "",
        '<button type="submit" class="picker__emoji" name="emoji" value="{}">{}</button>',
        ((emoji, emoji) for emoji in QUICK_REACTIONS),
    )


_FILE_KINDS = {
    "pdf": "pdf",
    **dict.fromkeys(("doc", "docx", "odt", "rtf", "txt", "md"), "doc"),
    **dict.fromkeys(("xls", "xlsx", "ods", "csv"), "sheet"),
    **dict.fromkeys(("ppt", "pptx", "odp"), "slides"),
    **dict.fromkeys(("png", "jpg", "jpeg", "gif", "webp"), "image"),
}


@register.filter
def file_kind(extension: str) -> str:
    """The colour of a file card's type badge: pdf, doc, sheet, slides, image or other."""
    return _FILE_KINDS.get((extension or "").lower().lstrip("."), "other")


@register.filter
def make_list_of_one(value: Any) -> list[Any]:
    """``[value]``: lets one item go through a template that loops over many."""
    return [value]
