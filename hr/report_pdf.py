"""The offboarding report as a PDF for HR's files (fpdf2: pure Python, nothing fetched).

The PDF is a rendering of the report's canonical JSON; the JSON and its SHA-256
stay the reference, and the PDF prints the hash so a reader can check it.
Names are set in DejaVu Sans when the system has it (every script); without it,
in the PDF core font Helvetica, where characters outside Latin-1 show as "?".
"""

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from fpdf import FPDF, FontFace
from fpdf.enums import XPos, YPos

from hr.models import OffboardingReport

_FONT_FOLDERS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
)
_KINDS = {"direct": "Direct", "group": "Group", "channel": "Channel"}


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _font(pdf: FPDF) -> tuple[str, bool]:
    """The font family to use, and whether it covers all of Unicode."""
    for folder in _FONT_FOLDERS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            pdf.add_font("DejaVu", "", str(regular))
            pdf.add_font("DejaVu", "B", str(bold))
            return "DejaVu", True
    return "Helvetica", False


class _Report:
    def __init__(self, report: OffboardingReport) -> None:
        self.report = report
        self.data: dict[str, Any] = report.content
        self.zone = ZoneInfo(settings.KONTOR_TIME_ZONE)
        self.pdf = FPDF(format="A4")
        self.pdf.set_margins(18, 18, 18)
        self.pdf.set_auto_page_break(auto=True, margin=18)
        self.family, self.unicode = _font(self.pdf)
        person = self.data["person"]
        self.pdf.set_title(self.text(f"Offboarding report: {person['name']}"))
        self.pdf.set_author(self.text(settings.KONTOR_COMPANY_NAME))
        self.pdf.set_creator("Kontor")
        # The same report gives the same PDF: no "now" inside.
        self.pdf.set_creation_date(report.offboarded_at)

    def text(self, value: object) -> str:
        text = "" if value is None else str(value)
        return text if self.unicode else text.encode("latin-1", "replace").decode("latin-1")

    def when(self, iso: str | None) -> str:
        if not iso:
            return "—" if self.unicode else "-"
        moment = datetime.fromisoformat(iso).astimezone(self.zone)
        return f"{moment:%d.%m.%Y %H:%M} ({self.zone.key})"

    def left(self, left: str | None) -> str:
        if left == "offboarding":
            return "at offboarding"
        return self.when(left)[:10] if left else ""

    def person(self, person: dict[str, Any] | None) -> str:
        if not person:
            return "none"
        return f"{person['name']} <{person['email']}>"

    def heading(self, text: str, size: int = 12) -> None:
        self.pdf.set_font(self.family, "B", size)
        self.pdf.cell(0, size * 0.6, self.text(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.pdf.ln(1.5)

    def facts(self, rows: list[tuple[str, object]]) -> None:
        with self.pdf.table(
            col_widths=(54, 120),
            text_align="LEFT",
            first_row_as_headings=False,
            borders_layout="HORIZONTAL_LINES",
            line_height=6,
        ) as table:
            for label, value in rows:
                row = table.row()
                self.pdf.set_font(self.family, "B", 9)
                row.cell(self.text(label))
                self.pdf.set_font(self.family, "", 9)
                row.cell(self.text(value))
        self.pdf.ln(4)

    def build(self) -> bytes:
        data, pdf = self.data, self.pdf
        pdf.add_page()
        self.heading("Offboarding report", 16)
        pdf.set_font(self.family, "", 9)
        pdf.multi_cell(
            0,
            5,
            self.text(
                f"{settings.KONTOR_COMPANY_NAME}. Written by Kontor when the account was closed; "
                "the report cannot be changed or deleted."
            ),
            align="L",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        pdf.ln(3)
        person = data["person"]
        hold = data.get("hold")
        scheduled = data.get("scheduled")
        self.facts(
            [
                ("Person", self.person(person)),
                ("Department", person.get("department") or "none"),
                ("Job title", person.get("job_title") or "none"),
                ("Offboarded at", self.when(data["offboarded_at"])),
                ("Offboarded by", self.person(data["offboarded_by"])),
                ("Successor", self.person(data.get("successor"))),
                (
                    "Scheduled",
                    f"for {self.when(scheduled['effective_at'])}" if scheduled else "no, done at once",
                ),
                ("Legal hold", f"{hold['name']}: {hold['reason']}" if hold else "none"),
            ]
        )
        counts = data["counts"]
        self.heading("What they leave behind")
        self.facts(
            [
                (
                    "Conversations",
                    f"{counts['conversations']} ({_n(counts['channels'], 'channel')}, "
                    f"{_n(counts['groups'], 'group')}, {counts['direct']} direct); "
                    f"left at offboarding: {counts['left_now']}",
                ),
                ("Ownership handed over", counts["handed_over"]),
                ("Messages written", f"{counts['messages']} (of them deleted: {counts['messages_deleted']})"),
                ("Files shared", f"{counts['files']} ({counts['file_bytes']:,} bytes)"),
                (
                    "Retention records",
                    f"{counts['records']} cover these conversations up to the offboarding "
                    f"({counts['records_written']} written by it; "
                    f"{counts['records_naming_person']} name the person)",
                ),
            ]
        )
        access = data["access"]
        self.heading("Access ended")
        self.facts(
            [
                ("Sessions ended", access["sessions"]),
                ("MFA authenticators removed", access["mfa_authenticators"]),
                ("SSO tokens removed", access["sso_tokens"]),
                ("Invitations revoked", access["invitations_revoked"]),
            ]
        )
        self.heading("Conversations")
        if data["conversations"]:
            pdf.set_font(self.family, "", 8)
            with pdf.table(
                col_widths=(52, 18, 26, 16, 62),
                text_align="LEFT",
                headings_style=FontFace(emphasis="BOLD", fill_color=(236, 253, 245)),
                borders_layout="HORIZONTAL_LINES",
                line_height=5,
            ) as table:
                header = table.row()
                for title in ("Conversation", "Kind", "Left", "Records", "Last record (position, SHA-256)"):
                    header.cell(title)
                for entry in data["conversations"]:
                    row = table.row()
                    row.cell(self.text(entry["name"]))
                    row.cell(_KINDS.get(entry["kind"], entry["kind"]))
                    left = entry["left"]
                    row.cell(
                        "at offboarding" if left == "offboarding" else self.when(left)[:10] if left else ""
                    )
                    row.cell(str(entry["records"]))
                    head = entry["head"]
                    row.cell(f"#{head['seq']} {head['sha256'][:24]}..." if head else "none")
        else:
            pdf.set_font(self.family, "", 9)
            pdf.cell(0, 5, "They were in no conversation.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(5)
        pdf.set_font(self.family, "", 8)
        pdf.multi_cell(
            0,
            4.5,
            f"Report {self.report.pk}, format {data['format']}. SHA-256 of its canonical JSON:",
            align="L",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        pdf.cell(0, 4.5, self.report.sha256, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        return bytes(pdf.output())


def report_pdf(report: OffboardingReport) -> bytes:
    """The report as a PDF document."""
    return _Report(report).build()
