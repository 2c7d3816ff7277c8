"""Message bodies and message rows.

A body is a safe subset of Markdown, rendered once at write time:
markdown-it-py parses (no raw HTML, no images, no headings or tables), a core
rule turns ``@handle`` and ``@channel`` into mention spans, and nh3 sanitises
the result against an allowlist, so whatever a body contains, the HTML that
reaches a browser holds no script, no event handler and no ``javascript:`` link.

A row is the message as a conversation shows it, drawn by one template for
the page and for live events alike (see "Message rows" below).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import nh3
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

if TYPE_CHECKING:
    from accounts.models import User
    from messenger.models import Message
    from messenger.selectors import ReactionSummary

EVERYONE = frozenset({"channel", "all", "everyone"})
MENTION = re.compile(r"(?<![\w@.])@([a-z0-9](?:[a-z0-9._+-]*[a-z0-9])?)", re.IGNORECASE)

ALLOWED_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "s",
    "del",
    "code",
    "pre",
    "a",
    "ul",
    "ol",
    "li",
    "blockquote",
    "span",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "span": {"class", "data-user-id"}, "ol": {"start"}}


@dataclass(frozen=True)
class Mentionable:
    user_id: int
    name: str


@dataclass
class Rendered:
    html: str
    mentioned_user_ids: set[int] = field(default_factory=set)
    mentions_everyone: bool = False


def _mention_rule(state: StateCore) -> None:
    people: Mapping[str, Mentionable] = state.env.get("people", {})
    found: Rendered = state.env["result"]
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        in_link = 0
        for token in block.children:
            if token.type == "link_open":
                in_link += 1
            elif token.type == "link_close":
                in_link -= 1
            if token.type != "text" or in_link or "@" not in token.content:
                children.append(token)
                continue
            pos = 0
            for match in MENTION.finditer(token.content):
                handle = match.group(1).lower()
                person = people.get(handle)
                if person is None and handle not in EVERYONE:
                    continue
                if match.start() > pos:
                    children.append(_text(token.content[pos : match.start()]))
                span = Token("mention", "span", 0)
                if person is not None:
                    span.meta = {"user_id": person.user_id, "label": f"@{person.name}"}
                    found.mentioned_user_ids.add(person.user_id)
                else:
                    span.meta = {"user_id": None, "label": f"@{handle}"}
                    found.mentions_everyone = True
                children.append(span)
                pos = match.end()
            if pos < len(token.content):
                children.append(_text(token.content[pos:]))
        block.children = children


def _text(content: str) -> Token:
    token = Token("text", "", 0)
    token.content = content
    return token


def _build() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": True, "breaks": True, "typographer": False})
    md.enable(["linkify", "strikethrough"])
    md.disable(["image", "heading", "lheading", "hr", "html_block", "html_inline", "reference"])
    md.core.ruler.push("kontor_mentions", _mention_rule)

    def render_mention(self: object, tokens: list[Token], idx: int, options: object, env: object) -> str:
        meta = tokens[idx].meta
        escaped = md.utils.escapeHtml(meta["label"])
        if meta["user_id"] is None:
            return f'<span class="mention mention--everyone">{escaped}</span>'
        return f'<span class="mention" data-user-id="{int(meta["user_id"])}">{escaped}</span>'

    md.add_render_rule("mention", render_mention)
    return md


_MD = _build()


def render_body(body: str, *, people: Mapping[str, Mentionable] | None = None) -> Rendered:
    """Render a message body; ``people`` maps lower-case handles to mentionable members."""
    result = Rendered(html="")
    raw = _MD.render(body, {"people": people or {}, "result": result})
    result.html = nh3.clean(
        raw,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    ).strip()
    return result


# --- Message rows ------------------------------------------------------------
#
# A message is drawn one way: ``messenger/_message.html`` renders its row for the
# conversation page and, once per journal event, for every live page
# (``messenger.events``). The row is the same whoever reads it. Only the page's
# own render marks what concerns its reader (own message, mention, own
# reactions) for browsers without JavaScript; the page's script marks the same
# from the row's data attributes, so a live row and a reloaded row end up equal.

RUN_GAP = timedelta(minutes=5)


def continues_run(previous: "Message | None", message: "Message") -> bool:
    """Whether ``message`` hangs below ``previous`` (the message before it in the
    conversation) without avatar and name: same author, at most five minutes
    later, and not a reply. What a page shows between two rows (a day or "New"
    divider, a deleted message) starts a new run all the same: the stylesheet
    says so (``.msg--cont`` counts only right after a message, chat.css)."""
    return (
        previous is not None
        and previous.author_id == message.author_id
        and message.reply_to_id is None
        and message.created_at - previous.created_at <= RUN_GAP
    )


def editable(message: "Message", *, conversation_open: bool, now: datetime | None = None) -> bool:
    """Whether its author may still edit ``message`` (the row then offers the editor)."""
    window = timedelta(seconds=settings.KONTOR_EDIT_WINDOW_SECONDS)
    return (
        message.deleted_at is None
        # A restricted person's messages are hidden: their text is in no row.
        and message.author.processing_restricted_at is None
        and conversation_open
        and (not window or (now or timezone.now()) - message.created_at < window)
    )


@dataclass
class MessageRow:
    """One message as a row: whether it continues the run above, whether its
    author may edit it, its reactions, and for a page (not for a live event)
    the dividers above it, who has read up to it and what concerns the reader."""

    message: "Message"
    continues_run: bool = False
    can_edit: bool = False
    reactions: "list[ReactionSummary]" = field(default_factory=list)
    seen_by: "list[User]" = field(default_factory=list)
    mentions_me: bool = False
    day: date | None = None
    unread_divider: bool = False
    pending: bool = False


def message_row_html(row: MessageRow) -> str:
    """The row every reader's page gets for a live event. Without a reader its
    times are in UTC; the page shows them in the reader's own time zone."""
    with timezone.override(UTC):
        return render_to_string("messenger/_message.html", {"row": row}).strip()


def reactions_html(message_id: int, reactions: "list[ReactionSummary]") -> str:
    """A message's reaction pills, as its row shows them (for a live reaction)."""
    context = {"message_id": message_id, "reactions": reactions}
    return render_to_string("messenger/_reactions.html", context).strip()
