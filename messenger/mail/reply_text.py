"""The new text of an email reply: what the user wrote, without the history.

A reply by mail carries the message it answers (quoted, or below a header
block), a signature and often a footer of the mail app. Only the new text is
posted into the conversation. The rules, in the order they are applied:

1. **HTML is preferred** (mail clients mark quotes structurally there); the
   text part is used when there is no HTML part or it shows no text at all.
2. **Structural quotes (HTML).** ``<blockquote>`` (Gmail ``gmail_quote``,
   Apple Mail/Thunderbird ``type="cite"``, but not the margin-only blockquotes
   that Gmail and Apple Mail use to *indent*), Yahoo and Proton quote
   containers, and the attribution above them (``gmail_attr``,
   ``moz-cite-prefix``) are removed. Whatever the user typed between two
   quotes stays.
3. **Outlook cuts (HTML).** Outlook quotes nothing: it appends the original
   below a separator. From ``<div id="appendonsend">``, the ``<hr
   style="display:inline-block;width:98%">``, ``<div id="divRplyFwdMsg">`` or
   the ``border-top:solid #E1E1E1`` header box on, everything is dropped.
4. **Structural signatures (HTML)**: ``gmail_signature``, ``moz-signature``,
   Outlook's ``#Signature`` and its mobile footer, Apple's
   ``#AppleMailSignature``.
5. **Line rules (both parts; the HTML is first turned into text).**
   - lines quoted with ``>`` are dropped; the user's lines between quotes are
     kept, one blank line standing where a quote was (inline answers survive);
   - an attribution ("On … wrote:", "Am … schrieb …:", also wrapped over up to
     three lines) directly above a quote is dropped; one that is *not*
     followed by a quote introduces an unquoted original, and ends the reply;
   - a reply header ("-----Original Message-----", "-----Ursprüngliche
     Nachricht-----", or a block of From/Von + Sent/Date/Gesendet/Datum with a
     year or time + Subject/Betreff lines) ends the reply, unless it belongs
     to a forwarded message, which is the user's content;
   - the signature delimiter ``-- `` drops the lines after it up to the next
     quote (a bare ``--`` only when at most a few lines follow).
6. **The end of the message.** Blank lines, separator rules, mobile footers
   ("Sent from my iPhone", "Get Outlook for iOS", "Von meinem iPhone
   gesendet", …) and a closing formula with its signature block are removed
   from the end. A closing formula ("Best regards", "Viele Grüße", "LG", …)
   is cut only when it stands on its own line and what follows is short and
   looks like a signature (names, titles, phone numbers; no questions, no
   sentences, no P.S.); "Thanks"/"Danke" only when a signature block follows,
   since on their own they are content.
7. **Nothing is lost by mistake.** A cut that would leave nothing of a
   message with content is not made for closing formulas; quoted history,
   however, is always dropped (a reply with nothing new gives ``""``).

Known limits: Outlook users who answer *inside* the appended original (in
colour, without quote marks) lose those answers: nothing marks them. Lines the
user starts with ">" count as quoted. A memo the user pastes with full From,
Date and Subject lines reads as a reply header. A farewell ("Best", "Cheers")
followed only by a few short lines is taken for a closing. Forwarded messages
are kept as content.

Plain-text parts sent with ``format=flowed`` (Thunderbird, Apple Mail) should be
passed through :func:`unflow_text` first, so soft line breaks become spaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from bs4 import BeautifulSoup
from bs4.element import NavigableString, PageElement, PreformattedString, Tag

__all__ = ["extract_reply", "html_to_text", "unflow_text"]

# Stands, in the text made from HTML, for a quote removed from the tree, so the
# line rules see "a quote was here" (to drop the attribution above it and to
# keep inline answers apart). A private-use character no client sends; it is
# removed from the input first.
_QUOTE_MARK = "\ue000"

# Invisible characters mail editors leave behind (zero-width spaces and joiners,
# word joiner, byte order mark, soft hyphen).
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"))
# Spaces that are not ASCII spaces (no-break, narrow no-break, figure, ideographic …).
_SPACES = dict.fromkeys(
    map(ord, "\u00a0\u202f\u2007\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2008\u2009\u200a"), " "
)


def extract_reply(*, text: str | None, html: str | None) -> str:
    """The new text of a reply: quoted history, reply headers, signatures and
    mobile footers removed; plain text with paragraphs kept (blank lines), trailing
    and leading whitespace stripped. Prefers the HTML part when it is given (mail
    clients mark quotes structurally there), else the text part. Returns "" when
    nothing new is left."""
    if html and html.strip():
        from_html = _text_of_html_reply(html)
        # An HTML part that shows no text at all (empty, or only images) says
        # nothing about quotes; the text part may still carry the reply.
        if from_html is not None:
            return _new_text(from_html)
    if text:
        return _new_text(_normalise_characters(text.replace(_QUOTE_MARK, "")))
    return ""


# --------------------------------------------------------------------------
# format=flowed (RFC 3676)
# --------------------------------------------------------------------------


def unflow_text(text: str, *, delsp: bool = False) -> str:
    """Undo ``format=flowed`` (RFC 3676): a line ending in a space continues on
    the next line of the same quote depth. ``delsp`` (the ``DelSp=yes``
    parameter) means the space was added by the wrapping and is removed."""
    out: list[str] = []
    paragraph: list[str] = []
    depth = 0  # of the paragraph being joined

    def flush() -> None:
        out.append(">" * depth + (" " if depth else "") + "".join(paragraph))
        paragraph.clear()

    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line_depth = len(raw) - len(raw.lstrip(">"))
        content = raw[line_depth:]
        if content.startswith(" "):  # space-stuffing
            content = content[1:]
        is_signature_delimiter = content == "-- "  # never flowed, and never continues a paragraph
        if paragraph and (line_depth != depth or is_signature_delimiter):
            flush()  # nor does a soft break continue into another quote depth
        depth = line_depth
        soft = content.endswith(" ") and not is_signature_delimiter
        if soft and delsp:
            content = content[:-1]
        paragraph.append(content)
        if not soft:
            flush()
    if paragraph:
        flush()
    return "\n".join(out)


# --------------------------------------------------------------------------
# HTML: structural quotes and signatures, then text
# --------------------------------------------------------------------------


def _classes(tag: Tag) -> list[str]:
    return [str(c) for c in tag.get_attribute_list("class") if c]


def _attr(tag: Tag, name: str) -> str:
    value = tag.get(name)
    if value is None:
        return ""
    return value if isinstance(value, str) else " ".join(value)


def _style(tag: Tag) -> str:
    """The inline style, lower case, without whitespace: easy to match."""
    return re.sub(r"\s+", "", _attr(tag, "style").lower())


def _is_indent_blockquote(tag: Tag) -> bool:
    # Gmail's and Apple Mail's "indent" button wraps text in a blockquote with
    # a margin and no border; a quote always has a left border or type="cite".
    if _attr(tag, "type").lower() == "cite" or "gmail_quote" in _classes(tag):
        return False
    return "border:none" in _style(tag)


def _is_quote(tag: Tag) -> bool:
    if tag.name == "blockquote":
        return not _is_indent_blockquote(tag)
    classes = _classes(tag)
    return any(c in ("yahoo_quoted", "protonmail_quote") for c in classes)


def _is_outlook_cut(tag: Tag) -> bool:
    """Where Outlook's appended original begins."""
    tag_id = _attr(tag, "id")
    if tag_id in ("appendonsend", "divRplyFwdMsg", "mail-editor-reference-message-container"):
        return True
    if "OutlookMessageHeader" in _classes(tag):
        return True
    style = _style(tag)
    if tag.name == "hr":
        return "display:inline-block" in style and "width:98%" in style
    if tag.name == "div":
        # The header box of Outlook desktop (2013+: #E1E1E1, 2007/2010: #B5C4DF).
        return "border:none" in style and (
            "border-top:solid#e1e1e1" in style or "border-top:solid#b5c4df" in style
        )
    return False


_SIGNATURE_IDS = frozenset({"Signature", "ms-outlook-mobile-signature", "AppleMailSignature"})
_SIGNATURE_CLASSES = frozenset(
    {"gmail_signature", "gmail_signature_prefix", "moz-signature", "protonmail_signature_block"}
)


def _is_signature(tag: Tag) -> bool:
    return _attr(tag, "id") in _SIGNATURE_IDS or any(c in _SIGNATURE_CLASSES for c in _classes(tag))


def _is_attribution(tag: Tag) -> bool:
    """The "On … wrote:" line above a quote, marked by the client."""
    classes = _classes(tag)
    if "moz-cite-prefix" in classes:
        return True
    if "gmail_attr" in classes:
        # Gmail marks a forwarded message's header the same way; that one has
        # no blockquote after it and is the user's content.
        following = tag.find_next_sibling(True)
        return isinstance(following, Tag) and following.name == "blockquote"
    return False


def _cut_from(tag: Tag) -> None:
    """Remove ``tag`` and everything after it in document order."""
    node: Tag | None = tag
    while node is not None and node.name not in ("body", "html", "[document]"):
        for sibling in list(node.next_siblings):
            sibling.extract()
        node = node.parent
    tag.extract()


def _alive(tag: Tag) -> bool:
    """Not removed yet. Removal is by ``extract()``, which leaves no parent;
    changing what is inside a removed element is harmless. (Not bs4's
    ``decomposed``: that searches the subtree on every call.)"""
    return tag.parent is not None


def _text_of_html_reply(html: str) -> str | None:
    """The text of an HTML reply with structural quotes and signatures removed
    (removed quotes leave a ``_QUOTE_MARK`` line); None when the HTML shows no
    text at all."""
    soup = BeautifulSoup(html.replace(_QUOTE_MARK, ""), "html.parser")
    if not html_to_text(soup):
        return None
    # Attributions first: Gmail's is recognised by the blockquote after it.
    for tag in soup.find_all(True):
        if _alive(tag) and _is_attribution(tag):
            tag.extract()
    # Quotes before Outlook's cut: an Outlook header *inside* a quoted message
    # must not cut the answer that a bottom-posting user wrote below the quote.
    for tag in soup.find_all(True):
        if _alive(tag) and _is_quote(tag):
            # A block of its own, so the mark is a line of its own.
            tag.replace_with(soup.new_tag("div", string=_QUOTE_MARK))
    cut = next((tag for tag in soup.find_all(True) if _is_outlook_cut(tag)), None)
    if cut is not None:
        _cut_from(cut)
    for tag in soup.find_all(True):
        if _alive(tag) and _is_signature(tag):
            tag.extract()
    return html_to_text(soup)


# Elements whose content is never shown.
_DROPPED = frozenset(
    {
        "head",
        "style",
        "script",
        "title",
        "meta",
        "link",
        "template",
        "noscript",
        "xml",
        "object",
        "iframe",
        "svg",
    }
)
# Elements that start and end a line.
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "caption", "center", "dd", "details", "dialog", "dir",
        "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hgroup", "hr",
        "li", "main", "menu", "nav", "ol", "section", "summary", "table", "tbody", "tfoot", "thead", "tr",
        "ul",
    }
)  # fmt: skip
# Elements that are paragraphs: a blank line before and after.
_PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "pre"})


@dataclass
class _TextWriter:
    """Collects text, collapsing whitespace the way a browser does, and keeps
    track of whether the output is at the start of a line."""

    parts: list[str] = field(default_factory=list)
    at_line_start: bool = True
    after_space: bool = True
    # A list marker was just written: the item's own blocks must not break
    # the line after "- ".
    after_marker: bool = False

    def text(self, value: str, *, preformatted: bool = False) -> None:
        value = value.translate(_INVISIBLE)
        if preformatted:
            lines = value.translate(_SPACES).split("\n")
            for index, line in enumerate(lines):
                if index:
                    self.newline()
                if line:
                    self._write(line)
            return
        # Only ASCII whitespace collapses; a no-break space is shown, so the
        # "<p>&nbsp;</p>" by which Outlook writes a blank line is one.
        value = re.sub(r"[ \t\n\r\f]+", " ", value)
        if self.after_space or self.at_line_start:
            value = value.lstrip(" ")
        if value:
            self._write(value.translate(_SPACES))

    def _write(self, value: str) -> None:
        self.parts.append(value)
        self.at_line_start = False
        self.after_marker = False
        self.after_space = value.endswith(" ")

    def marker(self, value: str) -> None:
        self.ensure_newline()
        self.parts.append(value)
        self.at_line_start = False
        self.after_space = True
        self.after_marker = True

    def newline(self) -> None:
        self.parts.append("\n")
        self.at_line_start = True
        self.after_space = True
        self.after_marker = False

    def ensure_newline(self) -> None:
        if not self.at_line_start and not self.after_marker:
            self.newline()

    def ensure_blank_line(self) -> None:
        if self.after_marker or not self.parts:
            return
        self.ensure_newline()
        if not "".join(self.parts[-2:]).endswith("\n\n"):
            self.newline()

    def result(self) -> str:
        return "".join(self.parts)


@dataclass
class _ListState:
    ordered: bool
    count: int = 0


def html_to_text(html: str | BeautifulSoup) -> str:
    """Plain text of an HTML mail body: blocks and ``<br>`` become line breaks,
    paragraphs are separated by a blank line, list items become ``- item``
    (``1. item`` in ordered lists, indented when nested), links keep their text
    and show the address in parentheses when it differs; head, style, script
    and hidden elements are dropped, entities decoded, no-break and zero-width
    characters normalised, runs of blank lines collapsed to one."""
    soup = html if isinstance(html, BeautifulSoup) else BeautifulSoup(html, "html.parser")
    writer = _TextWriter()
    lists: list[_ListState] = []
    preformatted = 0
    link_starts: list[tuple[int, str]] = []

    # Iterative, not recursive: a mail may nest thousands of unclosed tags.
    stack: list[tuple[PageElement, bool]] = [(soup, False)]
    while stack:
        node, leaving = stack.pop()
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, CDATA, <!…>
                writer.text(str(node), preformatted=preformatted > 0)
            continue
        if not isinstance(node, Tag):
            continue
        name = (node.name or "").lower()
        if not leaving:
            if name in _DROPPED or _is_hidden(node):
                continue
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(list(node.children)))
            # Opening.
            if name == "br":
                writer.newline()
            elif name in ("ul", "ol", "dir", "menu"):
                writer.ensure_newline()
                lists.append(_ListState(ordered=name == "ol"))
            elif name == "li":
                state = lists[-1] if lists else _ListState(ordered=False)
                state.count += 1
                indent = "  " * max(len(lists) - 1, 0)
                writer.marker(f"{indent}{state.count}. " if state.ordered else f"{indent}- ")
            elif name in _PARAGRAPHS and not _is_line_paragraph(node, inside_list=bool(lists)):
                writer.ensure_blank_line()
            elif name in _BLOCKS or name in _PARAGRAPHS:
                writer.ensure_newline()
            elif name == "a":
                link_starts.append((len(writer.parts), _link_target(node)))
            elif name in ("td", "th") and node.find_previous_sibling(("td", "th")) is not None:
                writer.text(" ")
            if name == "pre":
                preformatted += 1
            continue
        # Closing.
        if name == "pre":
            preformatted -= 1
        if name in ("ul", "ol", "dir", "menu"):
            if lists:
                lists.pop()
            writer.ensure_newline()
        elif name in _PARAGRAPHS and not _is_line_paragraph(node, inside_list=bool(lists)):
            writer.ensure_blank_line()
        elif name in _BLOCKS or name in _PARAGRAPHS:
            writer.ensure_newline()
        elif name == "a" and link_starts:
            start, target = link_starts.pop()
            shown = "".join(writer.parts[start:]).strip()
            if shown and target and not _same_address(shown, target):
                writer.text(f" ({target})")
    return _tidy(writer.result())


def _is_hidden(tag: Tag) -> bool:
    style = _style(tag)
    return "display:none" in style or "mso-hide:all" in style


def _is_line_paragraph(tag: Tag, *, inside_list: bool) -> bool:
    """A ``<p>`` that is a single line, not a paragraph: Outlook writes one
    ``<p class="MsoNormal">`` (without margins) per line, empty ones for blank
    lines; paragraphs inside list items are part of the item."""
    if tag.name != "p":
        return False
    if inside_list or any(c.startswith("Mso") for c in _classes(tag)):
        return True
    style = _style(tag)
    if re.search(r"(?:^|;)margin:0(?:cm|px|pt|in)?(?:;|$)", style):
        return True
    return "margin-top:0" in style and "margin-bottom:0" in style


def _link_target(tag: Tag) -> str:
    """The address a link leads to, as a reader would want to see it: web and
    mail addresses only, Outlook's "Safe Links" unwrapped, ``mailto:``
    dropped."""
    href = _attr(tag, "href").strip()
    if not href:
        return ""
    parts = urlsplit(href)
    scheme = parts.scheme.lower()
    if scheme in ("mailto", "tel"):
        return href.split(":", 1)[1].split("?", 1)[0]
    if scheme not in ("http", "https", "ftp"):
        return ""  # anchors, cid: images, javascript:
    if parts.netloc.lower().endswith("safelinks.protection.outlook.com"):
        wrapped = parse_qs(parts.query).get("url")
        if wrapped:
            return wrapped[0]
    return href


def _same_address(shown: str, target: str) -> bool:
    def bare(value: str) -> str:
        value = value.strip().lower()
        value = re.sub(r"^(?:mailto:|tel:|https?://|ftp://)", "", value)
        value = value.removeprefix("www.")
        return value.rstrip("/")

    return bare(shown) == bare(target)


def _normalise_characters(text: str) -> str:
    return text.translate(_INVISIBLE).translate(_SPACES)


def _tidy(text: str) -> str:
    """Line ends normalised, trailing spaces removed, at most one blank line in
    a row, no blank lines at the start or end."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


# --------------------------------------------------------------------------
# Line rules
# --------------------------------------------------------------------------

# "On Mon, 3 Dec 2026 at 10:00, Alice <alice@example.com> wrote:" (Gmail),
# "On 3 Dec 2026, at 10:00, Alice <…> wrote:" (Apple), "On 03.12.26 10:00, Alice
# wrote:" (Thunderbird). Each has a time, a year or an address, which a
# sentence of the user's that happens to start with "On" hardly has.
_DATED = r"(?=[^\n]*(?:\d{1,2}:\d{2}|\d{4}|@))"
_ATTRIBUTION_EN = re.compile(r"^On\b" + _DATED + r"[^\n]{4,300}\bwrote:?$", re.IGNORECASE)
# "Am Mo., 3. Dez. 2026 um 10:00 Uhr schrieb Alice <…>:" (Gmail), "Am 03.12.2026
# um 10:00 schrieb Alice <…>:" (Apple), "Am 03.12.26 um 10:00 schrieb Alice:"
# (Thunderbird), "Alice <…> schrieb am 03.12.2026 10:00:".
_ATTRIBUTION_DE = re.compile(
    r"^(?:Am\b" + _DATED + r"[^\n]{4,300}\bschrieb\b[^\n]{0,200}|[^\n]{1,200}\bschrieb am\b[^\n]{1,100}):$",
    re.IGNORECASE,
)
# "Alice Example <alice@example.com> wrote:" — only an attribution when a quote follows.
_ATTRIBUTION_WEAK = re.compile(r"^[^\n]{1,200}\b(?:wrote|schrieb|writes|schreibt)\s?:$", re.IGNORECASE)


def _any_of(*words: str) -> str:
    """A regular expression group matching any of ``words`` (plain text)."""
    return "(?:" + "|".join(re.escape(word).replace(r"\ ", " ") for word in words) + ")"


# "-----Original Message-----", "-----Ursprüngliche Nachricht-----".
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*"
    + _any_of("Original Message", "Ursprüngliche Nachricht", "Original-Nachricht", "Originalnachricht")
    + r"\s*-{2,}\s*$",
    re.IGNORECASE,
)
_FORWARDED_WORDS = _any_of(
    "Forwarded message",
    "Weitergeleitete Nachricht",
    "Begin forwarded message",
    "Anfang der weitergeleiteten Nachricht",
)
_FORWARDED = re.compile(rf"^\s*(?:-{{2,}}\s*{_FORWARDED_WORDS}\b.*|{_FORWARDED_WORDS}:)\s*$", re.IGNORECASE)
# A header line of a reply header block, also bold in the text of HTML ("*From:*").
_HEADER_KEYS = _any_of(
    "From",
    "Von",
    "Sent",
    "Gesendet",
    "Date",
    "Datum",
    "To",
    "An",
    "Cc",
    "Bcc",
    "Subject",
    "Betreff",
    "Reply-To",
)
_HEADER_LINE = re.compile(rf"^\s*\*?({_HEADER_KEYS})\*?\s?:\*?(?:\s|$)", re.IGNORECASE)
_HEADER_FROM = frozenset({"from", "von"})
_HEADER_DATE = frozenset({"sent", "gesendet", "date", "datum"})
_HEADER_SUBJECT = frozenset({"subject", "betreff"})
_HAS_YEAR_OR_TIME = re.compile(r"\d{4}|\d{1,2}:\d{2}")

_SIGNATURE_DELIMITER = "-- "


def _is_quoted(line: str) -> bool:
    stripped = line.lstrip()
    return stripped.startswith(">") or stripped == _QUOTE_MARK


def _attribution_length(lines: Sequence[str], index: int) -> tuple[int, bool]:
    """How many lines (1-3; Gmail wraps long ones) an attribution starting at
    ``index`` spans, 0 if there is none; and whether it is a strong one (with a
    date), which introduces the original even when that is not quoted."""
    first = lines[index].strip()
    if not first:
        return 0, False
    for length in (1, 2, 3):
        chunk = [line.strip() for line in lines[index : index + length]]
        if len(chunk) < length or (length > 1 and not chunk[-1]):
            break
        joined = " ".join(chunk)
        joined = re.sub(r"<\s+", "<", re.sub(r"\s+>", ">", joined))  # "Alice <\nalice@…>"
        if _ATTRIBUTION_EN.match(joined) or _ATTRIBUTION_DE.match(joined):
            return length, True
        if length == 1 and _ATTRIBUTION_WEAK.match(joined):
            return 1, False
        if not re.match(r"^(?:On|Am)\b", first, re.IGNORECASE):
            break  # only the full forms are wrapped
    return 0, False


def _next_content(lines: Sequence[str], index: int) -> int:
    while index < len(lines) and not lines[index].strip():
        index += 1
    return index


def _header_key(line: str) -> str | None:
    match = _HEADER_LINE.match(line)
    return match.group(1).lower() if match else None


def _is_reply_header(lines: Sequence[str], index: int) -> bool:
    """A block of From/Von, Sent/Date/Gesendet/Datum and Subject/Betreff lines
    (To and Cc too, which may wrap), as Outlook and others put above the
    original. All three, and a real date: a memo the user typed ("From: Berlin
    office / To: Munich / Date: Monday") is content."""
    if _header_key(lines[index]) not in _HEADER_FROM:
        return False
    keys: set[str] = set()
    dated = False
    for line in lines[index : index + 12]:
        if not line.strip():
            break
        key = _header_key(line)
        if key:
            keys.add(key)
            dated = dated or (key in _HEADER_DATE and bool(_HAS_YEAR_OR_TIME.search(line)))
    return dated and bool(keys & _HEADER_SUBJECT)


def _is_forwarded_header(lines: Sequence[str], index: int) -> bool:
    previous = index - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    return previous >= 0 and bool(_FORWARDED.match(lines[previous]))


def _signature_extent(lines: Sequence[str], index: int) -> int:
    """Lines up to the next quote (or attribution, or end) after a ``--`` line."""
    end = index + 1
    while end < len(lines) and not _is_quoted(lines[end]) and _attribution_length(lines, end)[0] == 0:
        end += 1
    return end


def _drop_history(lines: Sequence[str]) -> list[str]:
    """The user's lines: quotes, attributions, reply headers and the original
    below them, and ``-- `` signatures removed. Where a quote stood between
    kept lines, a blank line."""
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if _is_quoted(line):
            out.append("")
            index += 1
            continue
        length, strong = _attribution_length(lines, index)
        if length:
            following = _next_content(lines, index + length)
            if following < len(lines) and _is_quoted(lines[following]):
                out.append("")
                index += length
                continue
            if strong:
                break  # the original follows unquoted, or nothing does
        if _ORIGINAL_MESSAGE.match(line) or (
            _is_reply_header(lines, index) and not _is_forwarded_header(lines, index)
        ):
            break
        if line == _SIGNATURE_DELIMITER or line.strip() == "--":
            end = _signature_extent(lines, index)
            signature = [candidate for candidate in lines[index + 1 : end] if candidate.strip()]
            # "-- " is the standard delimiter; a bare "--" (HTML turned into
            # text loses the space; some use it as a rule) only when what
            # follows is short and looks like a signature.
            if line == _SIGNATURE_DELIMITER or (
                len(signature) <= _MAX_SIGNATURE_LINES and all(map(_looks_like_signature_line, signature))
            ):
                index = end
                continue
        out.append(line)
        index += 1
    return out


# --------------------------------------------------------------------------
# The end of the message: footers and closing formulas
# --------------------------------------------------------------------------

_DEVICE = _any_of(
    "iPhone", "iPad", "iPod", "Android", "BlackBerry", "Samsung", "Galaxy", "Huawei", "mobile", "phone",
    "smartphone", "Smartphone", "Handy", "Mobiltelefon",
)  # fmt: skip
_MAIL_APP = _any_of(
    "Outlook", "Mail for Windows", "Mail für Windows", "Yahoo Mail", "Proton Mail", "AOL", "Gmail"
)
_MOBILE_OS = _any_of("iOS", "Android", "Mac")
# Whole lines only; a little room for "Sent from my iPhone 15" or a model name.
_FOOTERS = [
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        rf"^Sent from my {_DEVICE}\b.{{0,40}}$",
        rf"^Sent (?:from|with) {_MAIL_APP}\b.{{0,40}}$",
        rf"^Get Outlook for {_MOBILE_OS}\b.{{0,10}}$",
        rf"^Von meinem {_DEVICE}\b.{{0,40}}\bgesendet\.?$",
        rf"^Gesendet (?:von|mit|vom) (?:meinem |der )?(?:{_DEVICE}|{_MAIL_APP})\b.{{0,40}}$",
        rf"^Von {_MAIL_APP} für {_MOBILE_OS} gesendet\.?$",
        rf"^Outlook für {_MOBILE_OS} (?:herunterladen|beziehen)\.?$",
    )
]
_SEPARATOR = re.compile(r"^\s*(?:[-_=*~]\s*){3,}$")

_GRUSS = r"gr(?:ü|ue|u)(?:ß|ss)e?n?"
# Farewells: cut at the end even without a name after them (the name may have
# been in an HTML signature already removed).
_REGARDS_ADJECTIVE = _any_of("best", "kind", "kindest", "warm", "warmest", "many", "with best", "with kind")
_GRUSS_ADJECTIVE = _any_of(
    "freundlichen", "freundlichem", "freundliche", "besten", "beste", "herzlichen", "herzliche", "lieben",
    "liebe", "vielen", "viele", "schöne", "sonnige",
)  # fmt: skip
_FAREWELL_WORDS = _any_of(
    "regards", "best wishes", "all the best", "best", "cheers", "sincerely", "yours sincerely", "yours truly",
    "yours", "br", "kr", "lg", "mfg", "vg", "bg", "ciao", "tschüss", "bis bald", "bis dann",
)  # fmt: skip
_FAREWELL = re.compile(
    rf"^(?:{_REGARDS_ADJECTIVE} regards|(?:mit )?{_GRUSS_ADJECTIVE} {_GRUSS}(?: aus \w+)?|{_GRUSS}"
    rf"|{_FAREWELL_WORDS})\s*[,.!]*$",
    re.IGNORECASE,
)
# Thanks: content on their own; a closing only when a signature block follows.
_THANKS_WORDS = _any_of(
    "thanks", "thank you", "many thanks", "thanks again", "thanks and regards", "thanks & regards", "thx",
    "danke", "vielen dank", "besten dank", "herzlichen dank", "dankeschön",
)  # fmt: skip
_THANKS = re.compile(rf"^(?:{_THANKS_WORDS}|danke und {_GRUSS})\s*[,.!]*$", re.IGNORECASE)
_CONTACT = re.compile(
    r"@|https?://|www\.|\+?\d[\d /().-]{5,}\d|\b(?:tel|fax|mobil|mobile|phone|fon)\b", re.IGNORECASE
)
_MAX_SIGNATURE_LINES = 8


def _is_footer(line: str) -> bool:
    # Outlook's text part writes a link as "text<https://…>", html_to_text as
    # "text (https://…)".
    bare = re.sub(r"\s*(?:<(?:https?|mailto):[^>]*>|\((?:https?|mailto):[^)]*\))", "", line).strip()
    return any(pattern.match(bare) for pattern in _FOOTERS)


def _looks_like_signature_line(line: str) -> bool:
    """Name, title, company, address, phone: short, no sentence, no question."""
    stripped = line.strip()
    if not stripped:
        return True
    if re.match(r"^p\.?\s?s\.?\b", stripped, re.IGNORECASE):
        return False  # a P.S. is content
    if stripped.endswith(("?", "!")) or len(stripped) > 80:
        return False
    words = stripped.split()
    if _CONTACT.search(stripped):
        return len(words) <= 12
    if len(words) > 8:
        return False
    # Signature lines are names and titles ("Head of Operations", "Example
    # Ltd."); a sentence has verbs, articles, adverbs: lower-case words (in
    # German too).
    lower = sum(1 for word in words if word[0].isalpha() and word[0].islower())
    return lower < 3 and not (lower >= 2 and stripped.endswith("."))


def _closing_index(lines: Sequence[str]) -> int | None:
    """Where a closing formula with its signature block begins, if the message
    ends with one."""
    for index in range(len(lines) - 1, -1, -1):
        candidate = lines[index].strip()
        farewell = bool(_FAREWELL.match(candidate))
        thanks = bool(_THANKS.match(candidate))
        if not (farewell or thanks):
            continue
        tail = [line for line in lines[index + 1 :] if line.strip()]
        if len(tail) > _MAX_SIGNATURE_LINES or not all(_looks_like_signature_line(line) for line in tail):
            return None  # content follows the last formula: it does not close the message
        if thanks and not tail:
            return None
        if not any(line.strip() for line in lines[:index]):
            return None  # it is the whole message
        return index
    return None


def _strip_trailing_footers(lines: list[str]) -> list[str]:
    """Blank lines, separator rules and mobile footers at the end removed."""
    end = len(lines)
    while end and (
        not lines[end - 1].strip() or _SEPARATOR.match(lines[end - 1]) or _is_footer(lines[end - 1])
    ):
        end -= 1
    return lines[:end]


def _strip_end(lines: list[str]) -> list[str]:
    """Footers, then a closing formula with its signature, then what was above
    them, removed from the end. One closing only: a second cut would judge
    the user's text by the same weak signs again."""
    lines = _strip_trailing_footers(lines)
    closing = _closing_index(lines)
    if closing is not None:
        lines = _strip_trailing_footers(lines[:closing])
    return lines


def _strip_start(lines: Iterable[str]) -> list[str]:
    out = list(lines)
    while out and (not out[0].strip() or _SEPARATOR.match(out[0])):
        out.pop(0)
    return out


def _new_text(text: str) -> str:
    raw = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    # Trailing spaces go, except the one of the signature delimiter.
    lines = [line if line == _SIGNATURE_DELIMITER else line.rstrip() for line in raw]
    kept = _strip_start(_strip_end(_drop_history(lines)))
    return _tidy("\n".join(kept)).strip()
