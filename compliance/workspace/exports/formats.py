"""The formats of an export, one message version at a time: RFC 5322
messages for the mbox, JSON Lines entries, and the PDF transcript.

Everything here works on ``Version``: one version of a message as its
retention record holds it (``compliance.workspace.exports.walk`` reads the
records through the chain reader and makes them). Nothing here reads the
database.

- mbox: ``email``'s compat32 classes (``MIMEText``, ``MIMEMultipart``), which
  build a message several times faster than ``EmailMessage``'s header
  parsing; each is serialised with folded headers and appended with
  ``mailbox.mbox`` (which writes the "From " line and escapes body lines
  starting with "From "). Message-IDs are derived from the message id and
  version alone, so every export of the same version names it the same.
- transcript: fpdf2 with DejaVu Sans when the system has it (Unicode),
  otherwise the PDF core font Helvetica (Latin-1; other characters show as
  "?"). Lines are wrapped here and placed with ``FPDF.text``: fpdf2's own
  ``multi_cell`` wraps in quadratic time and ``cell`` is four times slower.
  fpdf2 keeps a document in memory until it is written, so a transcript is
  split into volumes of ``TRANSCRIPT_VOLUME`` versions.
"""

import hashlib
import io
import logging
import mailbox
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email import encoders
from email.charset import QP, Charset
from email.generator import BytesGenerator
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fpdf import FPDF

from compliance.workspace.chain import RecordRef

# Message-IDs must be the same in every export of the same version, so that
# mail tools de-duplicate and thread across exports; ".invalid" never resolves.
MESSAGE_ID_DOMAIN = "archive.kontor.invalid"
# How many earlier versions of a message an edit's References header names.
REFERENCES_MAX = 20
HEADER_WIDTH = 78
# Versions per transcript volume (transcript-001.pdf, …): bounds fpdf2's memory.
TRANSCRIPT_VOLUME = 5000
FONT_FOLDERS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts")
_ADDRESS = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\]+$")
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


class _Prefolded(Compat32):
    """compat32, but ASCII header values are written as they are: they are
    folded (or encoded) where built. compat32 itself would run every value
    through ``email.header.Header`` (the mbox's slowest step) and move even a
    lone hash onto a line of its own."""

    def fold_binary(self, name: str, value: Any) -> bytes:
        if isinstance(value, str) and value.isascii() and "\r" not in value:
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


_WRITE = _Prefolded(linesep="\n")

# fpdf2 subsets the font with fontTools, which logs every step at INFO.
logging.getLogger("fontTools").setLevel(logging.WARNING)


@dataclass
class Version:
    """One version of a message, as its record holds it, with the people
    resolved from the records' identity snapshots."""

    conversation: dict[str, Any]
    title: str
    record: RecordRef
    event: dict[str, Any]
    message: dict[str, Any]
    revision: dict[str, Any]
    author: dict[str, Any]
    actor: dict[str, Any]
    members: list[dict[str, Any]]
    members_exact: bool

    @property
    def number(self) -> int:
        return int(self.revision["number"])

    @property
    def kind(self) -> str:
        return str(self.revision.get("kind") or "")

    @property
    def at(self) -> datetime:
        return datetime.fromisoformat(self.revision.get("at") or self.event["at"])


@dataclass(frozen=True)
class Attachment:
    """A file of a version, with its exact bytes (None: no copy matches its
    hash). ``refused`` says why bytes that were found were refused (an altered
    archive copy); without it, missing bytes are gone."""

    summary: dict[str, Any]
    data: bytes | None
    refused: str = ""


def message_id_header(message_id: int, version: int) -> str:
    return f"<kontor-message-{message_id}-v{version}@{MESSAGE_ID_DOMAIN}>"


def _one_line(value: Any) -> str:
    """Header values never carry line breaks (they would start new headers)."""
    return " ".join(str(value or "").split())


def subject(version: Version) -> str:
    marker = {"edited": " (edited)", "deleted": " (deleted)"}.get(version.kind, "")
    return _one_line(version.title) + marker


def threading(version: Version) -> tuple[str | None, list[str]]:
    """In-Reply-To and References: an edit or deletion answers the version
    before it; a reply answers the first version of the message it replies to."""
    message_id = int(version.message["id"])
    reply_to = version.message.get("reply_to")
    references = [message_id_header(int(reply_to), 1)] if reply_to else []
    earlier = range(max(1, version.number - REFERENCES_MAX), version.number)
    references += [message_id_header(message_id, n) for n in earlier]
    if version.number > 1:
        return message_id_header(message_id, version.number - 1), references
    return (references[0] if references else None), references


def jsonl_entry(version: Version, files: list[dict[str, Any]]) -> dict[str, Any]:
    """Every field of a version (``files`` say whether each one's bytes were found)."""
    in_reply_to, references = threading(version)
    conversation = version.conversation
    return {
        "conversation": {
            "id": conversation.get("id"),
            "kind": conversation.get("kind"),
            "name": conversation.get("name"),
            "topic": conversation.get("topic"),
            "private": conversation.get("private"),
            "title": version.title,
        },
        "message": {
            "id": version.message["id"],
            "seq": version.message.get("seq"),
            "reply_to": version.message.get("reply_to"),
        },
        "version": version.number,
        "kind": version.kind,
        "at": version.revision.get("at") or version.event["at"],
        "body": version.revision.get("body", ""),
        "author": version.author,
        "actor": version.actor,
        "members": version.members,
        "members_exact": version.members_exact,
        "files": files,
        "event": {
            "id": version.event["id"],
            "type": version.event.get("type"),
            "at": version.event.get("at"),
        },
        "record": {
            "conversation": version.record.conversation_id,
            "seq": version.record.seq,
            "sha256": version.record.sha256,
            "file": version.record.file,
        },
        "email": {
            "message_id": message_id_header(int(version.message["id"]), version.number),
            "in_reply_to": in_reply_to,
            "references": references,
            "subject": subject(version),
        },
    }


# --- mbox -------------------------------------------------------------------


def address(person: Mapping[str, Any]) -> tuple[str, str]:
    """(display name, address) as the record captured them; a missing or
    malformed address (an anonymised person) gets a stand-in that says so."""
    name = _one_line(person.get("name")) or f"Person {person.get('id')}"
    email = _one_line(person.get("email"))
    if not _ADDRESS.match(email):
        email = f"person-{person.get('id')}@{MESSAGE_ID_DOMAIN}"
    return name, email


def rfc5322(version: Version, attachments: list[Attachment]) -> bytes:
    """The version as an RFC 5322 message: its text, its files' exact bytes,
    threading headers and the covering record's hash."""
    text = str(version.revision.get("body") or "")
    body = MIMENonMultipart("text", "plain")
    body.set_payload(text, "us-ascii" if text.isascii() else _UTF8_QP)
    message: MIMENonMultipart | MIMEMultipart = body
    if attachments:
        # A boundary of its own (not the random default), so the same version
        # gives the same bytes in every export; no part can contain it.
        seed = f"{version.message['id']}:{version.number}:{version.record.sha256}:{text}"
        boundary = "=_kontor_" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:40]
        message = MIMEMultipart("mixed", boundary=boundary)
        message.attach(body)
        for attachment in attachments:
            message.attach(_part(attachment))
    author = address(version.author)
    message["From"] = formataddr(author, charset="utf-8")
    recipients = [address(m) for m in version.members if m.get("id") != version.author.get("id")]
    message["To"] = (
        ", ".join(formataddr(r, charset="utf-8") for r in recipients) or "undisclosed-recipients:;"
    )
    message["Date"] = format_datetime(version.at.astimezone(UTC))
    title = subject(version)
    if not title.isascii():  # RFC 2047 encoded words, folded
        title = Header(title, "utf-8", header_name="Subject").encode(maxlinelen=HEADER_WIDTH)
    message["Subject"] = title
    message["Message-ID"] = message_id_header(int(version.message["id"]), version.number)
    in_reply_to, references = threading(version)
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = _folded(references, "")
    record, conversation = version.record, version.conversation
    message["X-Kontor-Record-SHA256"] = record.sha256
    message["X-Kontor-Record"] = f"conversation={record.conversation_id}; seq={record.seq}"
    message["X-Kontor-Conversation"] = f"{conversation.get('id')}; kind={conversation.get('kind')}"
    message["X-Kontor-Message"] = (
        f"id={version.message['id']}; seq={version.message.get('seq')}; "
        f"version={version.number}; kind={version.kind}"
    )
    message["X-Kontor-Actor"] = formataddr(address(version.actor), charset="utf-8")
    if version.author.get("external"):
        # A client or partner who wrote by email, not an employee.
        message["X-Kontor-Author-External"] = "yes"
    out = io.BytesIO()
    # The "From " line of the mbox: the author and the version's time.
    out.write(f"From {author[1]} {version.at.astimezone(UTC):%a %b %d %H:%M:%S %Y}\n".encode("ascii"))
    # mailbox escapes body lines that start with "From " itself.
    BytesGenerator(out, mangle_from_=False, policy=_WRITE).flatten(message)
    return out.getvalue()


def _folded(items: list[str], separator: str) -> str:
    """Items joined by ``separator`` and a space, folded before a line grows
    past the recommended width."""
    lines, line = [], ""
    for item in items:
        if line and len(line) + len(item) + 2 > HEADER_WIDTH - 12:
            lines.append(line + separator)
            line = item
        else:
            line = f"{line}{separator} {item}" if line else item
    return "\n ".join([*lines, line]) if line else ""


def _part(attachment: Attachment) -> MIMEBase:
    summary = attachment.summary
    name = _one_line(summary.get("name")) or str(summary.get("sha256", "file"))
    if attachment.data is None and attachment.refused:
        part: MIMEBase = MIMEText(
            f"The file {name!r} (SHA-256 {summary.get('sha256')}) was REFUSED and is not included: "
            f"{attachment.refused}\n",
            "plain",
            "utf-8",
        )
        part.add_header("Content-Disposition", "attachment", filename=f"{name}.refused.txt")
        # "missing": its bytes are not in this export (what verify_export.py checks).
        part["X-Kontor-File-Status"] = "missing"
        part["X-Kontor-File-Refused"] = "altered"
    elif attachment.data is None:
        part = MIMEText(
            f"The file {name!r} (SHA-256 {summary.get('sha256')}) is not in the archive any more, "
            "or no copy matches its hash: it could not be included.\n",
            "plain",
            "utf-8",
        )
        part.add_header("Content-Disposition", "attachment", filename=f"{name}.missing.txt")
        part["X-Kontor-File-Status"] = "missing"
    else:
        maintype, _, subtype = str(summary.get("type") or "").partition("/")
        if not maintype or not subtype or "/" in subtype:
            maintype, subtype = "application", "octet-stream"
        part = MIMEBase(maintype, subtype)
        part.set_payload(attachment.data)
        encoders.encode_base64(part)
        part.add_header("Content-Disposition", "attachment", filename=name)
    part["X-Kontor-File-SHA256"] = str(summary.get("sha256"))
    return part


class _AppendOnlyMbox(mailbox.mbox):
    """``mailbox.mbox`` keeps every message's offsets for later lookups; an
    export only appends, so it forgets them (memory stays flat however many
    versions are written)."""

    def add(self, message: Any) -> str:
        key = super().add(message)
        del self._toc[key]  # type: ignore[attr-defined]
        return key


class Mbox:
    """``messages.mbox``, appended to one message at a time."""

    def __init__(self, path: Path) -> None:
        self.box = _AppendOnlyMbox(str(path), create=True)

    def add(self, version: Version, attachments: list[Attachment]) -> None:
        self.box.add(rfc5322(version, attachments))

    def close(self) -> None:
        self.box.close()


# --- The PDF transcript -------------------------------------------------------


def font_files() -> tuple[Path, Path] | None:
    """A Unicode TrueType font for the transcript: DejaVu Sans, which Debian
    installs with fonts-dejavu-core."""
    for folder in FONT_FOLDERS:
        regular, bold = Path(folder, "DejaVuSans.ttf"), Path(folder, "DejaVuSans-Bold.ttf")
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None


class Transcript:
    """``transcript.pdf`` (or ``transcript-001.pdf``, … when it needs more than
    one volume): a title page naming the case, the scope, the time and the
    covering records' hashes, then every version with its time, author, text
    and version marker. Fed from messages.jsonl's entries."""

    MARGIN = 15.0

    def __init__(
        self,
        folder: Path,
        title: list[tuple[str, str]],
        records: list[dict[str, Any]],
        time_zone: str,
        volume_size: int = TRANSCRIPT_VOLUME,
    ) -> None:
        self.folder, self.title, self.records = folder, title, records
        self.zone, self.volume_size = ZoneInfo(time_zone), volume_size
        self.paths: list[Path] = []
        self.pdf: FPDF | None = None
        self.y = 0.0
        self.count = 0
        self.conversation: Any = None
        self.font = font_files()
        self.family = "Transcript" if self.font else "helvetica"
        self.widths: dict[tuple[str, float], dict[str, float]] = {}

    # Volumes ------------------------------------------------------------------

    def _open_volume(self) -> FPDF:
        pdf = FPDF(format="A4")
        pdf.set_auto_page_break(False)
        pdf.set_margins(self.MARGIN, self.MARGIN, self.MARGIN)
        pdf.set_title("Kontor archive export: transcript")
        pdf.set_creator("Kontor")
        if self.font:
            pdf.add_font(self.family, "", str(self.font[0]))
            pdf.add_font(self.family, "B", str(self.font[1]))
        volume = len(self.paths) + 1
        footer = self._clean(f"{self.title[0][1]} · transcript volume {volume}")
        family = self.family

        def page_footer() -> None:
            pdf.set_font(family, "", 7)
            pdf.text(self.MARGIN, pdf.h - 8, f"{footer} · page {pdf.page_no()}")

        pdf.footer = page_footer  # type: ignore[method-assign]
        self.pdf = pdf
        self._new_page()
        self._write("Kontor archive export: transcript", size=16, bold=True)
        if volume > 1:
            self._write(f"Volume {volume}, continuing transcript-{volume - 1:03d}.pdf.")
        self.y += 3
        for label, value in self.title:
            self._write(label, size=8, bold=True)
            self._write(value)
            self.y += 1
        if volume == 1:
            self.y += 2
            self._write(f"Covering records ({len(self.records)})", size=8, bold=True)
            for entry in self.records:
                state = " (purged: its content is no longer archived)" if entry.get("purged") else ""
                self._write(
                    f"Conversation {entry['conversation']}, record {entry['seq']}: "
                    f"SHA-256 {entry['sha256']}{state}",
                    size=7,
                )
        self._new_page()
        self.conversation = None
        return pdf

    def _close_volume(self) -> None:
        if self.pdf is None:
            return
        path = self.folder / f"transcript-{len(self.paths) + 1:03d}.pdf"
        self.pdf.output(str(path))
        self.paths.append(path)
        self.pdf = None

    def close(self) -> list[Path]:
        """Write the last volume; one volume is named ``transcript.pdf``."""
        if self.pdf is None:
            self._open_volume()
            self._write("No message versions in this export.")
        self._close_volume()
        if len(self.paths) == 1:
            self.paths[0] = self.paths[0].rename(self.folder / "transcript.pdf")
        return self.paths

    # Entries ------------------------------------------------------------------

    def add(self, entry: Mapping[str, Any]) -> None:
        if self.pdf is None or (self.count and self.count % self.volume_size == 0):
            self._close_volume()
            self._open_volume()
        self.count += 1
        conversation = entry["conversation"]
        if conversation["id"] != self.conversation:
            self.conversation = conversation["id"]
            self.y += 2
            self._write(
                f"{conversation['title']} ({conversation['kind']} {conversation['id']})", size=12, bold=True
            )
        at = datetime.fromisoformat(entry["at"]).astimezone(self.zone)
        markers = {"edited": f"edited, version {entry['version']}", "deleted": "deleted"}
        marker = markers.get(entry["kind"], "")
        if entry["kind"] == "deleted" and entry["actor"].get("id") != entry["author"].get("id"):
            marker += f" by {entry['actor'].get('name')}"
        head = (
            f"{at:%Y-%m-%d %H:%M:%S %Z}   {entry['author'].get('name')}   message {entry['message']['seq']}"
        )
        if entry["message"].get("reply_to"):
            head += f", replying to message id {entry['message']['reply_to']}"
        if marker:
            head += f"   [{marker}]"
        self.y += 1.5
        self._write(head, size=8, bold=True)
        body = entry["body"] or ("" if entry["files"] else "(no text)")
        if body:
            self._write(body, size=10)
        for summary in entry["files"]:
            state = "" if summary.get("available") else " - NOT INCLUDED: no archived copy matches its hash"
            if summary.get("refused"):
                state = f" - REFUSED, NOT INCLUDED: {summary['refused']}"
            self._write(
                f"Attachment: {summary.get('name')} ({summary.get('size')} bytes, {summary.get('type')}), "
                f"SHA-256 {summary.get('sha256')}{state}",
                size=7,
            )

    # Text ---------------------------------------------------------------------

    def _new_page(self) -> None:
        assert self.pdf is not None
        self.pdf.add_page()
        self.y = self.MARGIN

    def _clean(self, text: str) -> str:
        if self.font is None:
            return text.encode("latin-1", "replace").decode("latin-1")
        return text

    def _write(self, text: str, *, size: float = 10, bold: bool = False) -> None:
        pdf = self.pdf
        assert pdf is not None
        style = "B" if bold else ""
        pdf.set_font(self.family, style, size)
        height = size * 0.42
        glyphs = getattr(pdf.current_font, "cw", None) if self.font else None
        widths = self.widths.setdefault((style, size), {})
        for line in wrap(self._clean(text), pdf.epw, widths, pdf.get_string_width, glyphs):
            if self.y + height > pdf.h - self.MARGIN:
                self._new_page()
            # text() places the baseline; cell() would cost four times as much.
            pdf.text(pdf.l_margin, self.y + height * 0.8, line)
            self.y += height


def wrap(
    text: str, width: float, widths: dict[str, float], measure: Any, glyphs: Mapping[int, Any] | None
) -> Iterator[str]:
    """Lines of at most ``width``: words kept whole where they fit, long
    words cut; each character measured once per font (``widths``). With
    ``glyphs`` (a TrueType font's), characters it lacks become U+FFFD."""

    def size(piece: str) -> float:
        total = 0.0
        for char in piece:
            if char not in widths:
                widths[char] = measure(char)
            total += widths[char]
        return total

    for paragraph in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        paragraph = paragraph.replace("\t", "    ")
        if glyphs is not None:
            for char in {c for c in paragraph if ord(c) not in glyphs}:
                paragraph = paragraph.replace(char, "\ufffd")
        line, used = "", 0.0
        for word in paragraph.split(" "):
            piece = (" " if line else "") + word
            piece_width = size(piece)
            if line and used + piece_width > width:
                yield line
                line, used, piece = "", 0.0, word
                piece_width = size(piece)
            while piece_width > width:  # longer than a line: cut it
                cut, taken = 0, 0.0
                while cut < len(piece) and taken + size(piece[cut]) <= width:
                    taken += size(piece[cut])
                    cut += 1
                cut = max(cut, 1)
                yield piece[:cut]
                piece = piece[cut:]
                piece_width = size(piece)
            line += piece
            used += piece_width
        yield line
