"""Text taken out of stored documents, for search (here and in the compliance
archive): PDFs with pypdf, Word documents with python-docx, plain text and CSV
as UTF-8. Whitespace is collapsed and the text is capped at ``MAX_CHARS``: the
index needs the words, not the layout, and a hostile file must not fill the
database.
"""

import io
import re

import docx
from django.core.files.storage import default_storage
from pypdf import PdfReader

from archive.models import StoredFile

MAX_CHARS = 1_000_000
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
EXTRACTABLE = frozenset({"application/pdf", DOCX, "text/plain", "text/csv"})
_SPACE = re.compile(r"\s+")


class Unextractable(Exception):
    """The file's bytes cannot be read as the document they claim to be."""


def extract_text(stored: StoredFile) -> str:
    """The document's words, whitespace normalised. Raises ``Unextractable``."""
    if stored.content_type not in EXTRACTABLE:
        raise Unextractable(f"no text extraction for {stored.content_type}")
    with default_storage.open(stored.storage_key, "rb") as handle:
        data = handle.read()
    # Parsers of hostile bytes raise more than they document (struct and zip
    # errors, recursion in crafted object graphs): all of it means "no text".
    try:
        if stored.content_type == "application/pdf":
            pieces = _pdf(data)
        elif stored.content_type == DOCX:
            pieces = _docx(data)
        else:
            pieces = [data[: MAX_CHARS * 4].decode("utf-8", errors="replace")]
    except Exception as error:
        raise Unextractable(f"{type(error).__name__}: {error}") from error
    return normalise(pieces)


def normalise(pieces: list[str]) -> str:
    text = _SPACE.sub(" ", " ".join(pieces)).strip()
    # NUL cannot be stored in a PostgreSQL text column.
    return text.replace("\x00", "")[:MAX_CHARS]


def _pdf(data: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        # Encrypted with an empty user password (common for "protected" PDFs)
        # still opens; anything else stays unreadable.
        reader.decrypt("")
    pieces: list[str] = []
    total = 0
    for page in reader.pages:
        text = page.extract_text() or ""
        pieces.append(text)
        total += len(text)
        if total >= MAX_CHARS:
            break
    return pieces


def _docx(data: bytes) -> list[str]:
    document = docx.Document(io.BytesIO(data))
    pieces = [paragraph.text for paragraph in document.paragraphs]
    total = sum(len(p) for p in pieces)
    for table in document.tables:
        for row in table.rows:
            for cell in row.cells:
                pieces.append(cell.text)
                total += len(cell.text)
                if total >= MAX_CHARS:
                    return pieces
    return pieces
