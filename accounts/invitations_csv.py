"""Inviting many people at once from a CSV file (HR's bulk upload in admin).

``invitation_rows`` reads the file and checks every row without changing
anything: the admin shows it as a preview, with each row's errors. After HR
confirms, ``invitations_send`` invites the rows without errors, each in its own
transaction through ``services.invitation_create`` (one bad row never stops the
others), and says which failed meanwhile.

The first line names the columns; ``email`` is required, ``name``,
``job_title`` and ``department`` are optional (a few spellings of each are
understood). Commas, semicolons (German Excel) and tabs separate fields; UTF-8
(with or without BOM) and Windows-1252 are read.
"""

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts import services
from accounts.models import Department, Invitation, User

MAX_BYTES = 512 * 1024
MAX_ROWS = 500
FIELD_MAX = 150
COLUMNS = {
    "email": "email",
    "e-mail": "email",
    "email address": "email",
    "mail": "email",
    "name": "display_name",
    "display name": "display_name",
    "display_name": "display_name",
    "full name": "display_name",
    "title": "job_title",
    "job title": "job_title",
    "job_title": "job_title",
    "position": "job_title",
    "department": "department",
    "team": "department",
}


@dataclass
class Row:
    line: int
    email: str
    display_name: str = ""
    job_title: str = ""
    department_name: str = ""
    department: Department | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class Parsed:
    rows: list[Row]
    ignored_columns: list[str]

    @property
    def valid(self) -> list[Row]:
        return [row for row in self.rows if row.ok]

    @property
    def invalid(self) -> list[Row]:
        return [row for row in self.rows if not row.ok]


def decode(data: bytes) -> str:
    """The text of an uploaded file: UTF-8 (Excel's BOM removed) or Windows-1252."""
    if len(data) > MAX_BYTES:
        raise ValidationError(f"The file is larger than {MAX_BYTES // 1024} KB; split it up.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise ValidationError("The file is not text (save it as CSV, UTF-8).") from None


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    first = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(first, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def invitation_rows(text: str) -> Parsed:
    """Read and check a CSV of people to invite; changes nothing."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise ValidationError("The file is empty.")
    reader = csv.reader(io.StringIO(text), _dialect(text))
    header = next(reader)
    columns = [COLUMNS.get(name.strip().lower()) for name in header]
    if "email" not in columns:
        raise ValidationError(
            "The first line must name the columns, one of them “email” (others: name, job_title, department)."
        )
    ignored = [
        name.strip() for name, column in zip(header, columns, strict=True) if column is None and name.strip()
    ]
    departments = {d.name.lower(): d for d in Department.objects.all()}
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for values in reader:
        if not any(value.strip() for value in values):
            continue
        if len(rows) >= MAX_ROWS:
            raise ValidationError(f"At most {MAX_ROWS} people per file; split it up.")
        data = {column: value.strip() for column, value in zip(columns, values, strict=False) if column}
        row = Row(
            line=reader.line_num,
            email=data.get("email", "").lower(),
            display_name=data.get("display_name", ""),
            job_title=data.get("job_title", ""),
            department_name=data.get("department", ""),
        )
        _check(row, departments, seen)
        rows.append(row)
    if not rows:
        raise ValidationError("The file names the columns but lists nobody.")
    return Parsed(rows=rows, ignored_columns=ignored)


def _check(row: Row, departments: dict[str, Department], seen: dict[str, int]) -> None:
    if not row.email:
        row.errors.append("No email address.")
    else:
        try:
            validate_email(row.email)
        except ValidationError:
            row.errors.append(f"“{row.email}” is not an email address.")
        else:
            if row.email in seen:
                row.errors.append(f"Listed already on line {seen[row.email]}.")
            else:
                seen[row.email] = row.line
                try:
                    services.invitation_check_email(email=row.email)
                except ValidationError as error:
                    row.errors.extend(error.message_dict.get("email", error.messages))
    for label, value in (("Name", row.display_name), ("Job title", row.job_title)):
        if len(value) > FIELD_MAX:
            row.errors.append(f"{label} is longer than {FIELD_MAX} characters.")
    if row.department_name:
        row.department = departments.get(row.department_name.lower())
        if row.department is None:
            row.errors.append(f"There is no department “{row.department_name}”.")


@dataclass
class Sent:
    invitations: list[Invitation]
    failed: list[tuple[Row, str]]


def invitations_send(*, invited_by: User, rows: Iterable[Row], base_url: str) -> Sent:
    """Invite every row without errors, each in its own transaction."""
    sent = Sent(invitations=[], failed=[])
    for row in rows:
        if not row.ok:
            continue
        try:
            invitation = services.invitation_create(
                invited_by=invited_by,
                email=row.email,
                display_name=row.display_name,
                job_title=row.job_title,
                department=row.department,
                base_url=base_url,
            )
        except ValidationError as error:
            sent.failed.append((row, " ".join(error.messages)))
        else:
            sent.invitations.append(invitation)
    return sent
