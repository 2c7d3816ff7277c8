"""Real documents built in the test, for previews and text extraction."""

import io

import docx
from PIL import Image


def text_pdf(text: str) -> bytes:
    """A one-page PDF whose page shows ``text`` in Helvetica (a real text
    content stream, with a correct cross-reference table)."""
    stream = f"BT /F1 24 Tf 72 700 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def picture_pdf(size: tuple[int, int] = (800, 1000), colour: str = "red") -> bytes:
    """A one-page PDF whose page is a picture (Pillow writes it)."""
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PDF")
    return out.getvalue()


def word_document(paragraphs: list[str], cells: list[str]) -> bytes:
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    table = document.add_table(rows=1, cols=len(cells))
    for cell, text in zip(table.rows[0].cells, cells, strict=True):
        cell.text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def jpeg_rotated(size: tuple[int, int] = (200, 100)) -> bytes:
    """A JPEG stored sideways with EXIF orientation 6 (turn 90° clockwise) and
    a camera make that must not survive into the preview."""
    image = Image.new("RGB", size, "navy")
    exif = image.getexif()
    exif[0x0112] = 6  # Orientation
    exif[0x010F] = "Kontor Test Camera"  # Make
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()
