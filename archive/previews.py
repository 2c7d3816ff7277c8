"""Thumbnails of stored images and of a PDF's first page.

A preview is made from the stored bytes, never trusted as-is: the picture is
decoded under a pixel limit, turned upright by its EXIF orientation, shrunk to
fit ``SIZE`` and re-encoded without any metadata (no EXIF, GPS or ICC). PDFs are
rendered with PDFium (pypdfium2 bundles it; no system binary). Previews are
kept content-addressed under ``previews/<sha256>-640.<ext>``, so the same bytes
uploaded twice share one thumbnail.
"""

import io
from typing import Any

import pypdfium2 as pdfium
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import FileResponse
from django.utils.http import content_disposition_header
from PIL import Image, ImageOps, features

from archive.models import StoredFile
from archive.validation import MAX_IMAGE_PIXELS

SIZE = 640
PREVIEWABLE = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})


class Unpreviewable(Exception):
    """The file's bytes cannot be turned into a picture (damaged, hostile, empty)."""


def _format() -> tuple[str, str, str]:
    """Pillow format, extension and content type of previews on this machine."""
    if features.check("webp"):
        return "WEBP", "webp", "image/webp"
    return "PNG", "png", "image/png"


def preview_key(sha256: str) -> str:
    return f"previews/{sha256}-{SIZE}.{_format()[1]}"


def preview_content_type(key: str) -> str:
    return "image/webp" if key.endswith(".webp") else "image/png"


def preview_store(stored: StoredFile) -> str:
    """The storage key of ``stored``'s thumbnail, made now unless the same
    content has one already. Raises ``Unpreviewable`` for bytes that are no picture."""
    key = preview_key(stored.sha256)
    if default_storage.exists(key):
        return key
    return default_storage.save(key, ContentFile(make_preview(stored), name=key))


def make_preview(stored: StoredFile) -> bytes:
    """The thumbnail's encoded bytes. Raises ``Unpreviewable``."""
    with default_storage.open(stored.storage_key, "rb") as handle:
        data = handle.read()
    # Parsers of hostile bytes raise more than they document (struct errors,
    # assertion failures, PDFium's own errors): all of it means "no preview".
    try:
        if stored.content_type == "application/pdf":
            picture = _render_pdf(data)
        elif stored.content_type in PREVIEWABLE:
            picture = _open_image(data)
        else:
            raise Unpreviewable(f"no previews for {stored.content_type}")
        return _encode(_shrink(picture))
    except Unpreviewable:
        raise
    except (Exception, Image.DecompressionBombError) as error:
        raise Unpreviewable(f"{type(error).__name__}: {error}") from error


def _open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise Unpreviewable(f"{width}x{height} is over the pixel limit")
    # Let JPEG decode at a reduced scale: a 24-megapixel photo needs not be
    # fully decoded for a 640-pixel thumbnail.
    image.draft("RGB", (SIZE, SIZE))
    image.seek(0)  # the first frame of an animation
    upright = ImageOps.exif_transpose(image)
    upright.load()
    return upright


def _render_pdf(data: bytes) -> Image.Image:
    document = pdfium.PdfDocument(data)
    try:
        if len(document) == 0:
            raise Unpreviewable("the PDF has no pages")
        page = document[0]
        try:
            width, height = page.get_size()
            if width <= 0 or height <= 0:
                raise Unpreviewable("the first page has no area")
            # Render straight at thumbnail size (points are 1/72 inch): a huge
            # page size cannot make a huge bitmap.
            scale = min(SIZE / width, SIZE / height, 4.0)
            bitmap = page.render(scale=scale)
            try:
                return bitmap.to_pil().copy()
            finally:
                bitmap.close()
        finally:
            page.close()
    finally:
        document.close()


def _shrink(image: Image.Image) -> Image.Image:
    if image.mode not in ("RGB", "RGBA"):
        has_alpha = image.mode in ("LA", "PA", "La") or (image.mode == "P" and "transparency" in image.info)
        image = image.convert("RGBA" if has_alpha else "RGB")
    image.thumbnail((SIZE, SIZE), Image.Resampling.LANCZOS)
    # A fresh image carries pixels only: EXIF, XMP, ICC and comments stay behind.
    clean = Image.new(image.mode, image.size)
    clean.paste(image)
    return clean


def _encode(image: Image.Image) -> bytes:
    fmt, _, _ = _format()
    out = io.BytesIO()
    options: dict[str, Any] = {"quality": 80, "method": 4} if fmt == "WEBP" else {"optimize": True}
    image.save(out, format=fmt, **options)
    return out.getvalue()


def preview_response(stored: StoredFile) -> FileResponse:
    """The ready thumbnail, inline, as inert as a download (the caller has
    checked access and that ``stored.preview_state`` is ready)."""
    response = FileResponse(
        default_storage.open(stored.preview_key, "rb"), content_type=preview_content_type(stored.preview_key)
    )
    stem = stored.name.rsplit(".", 1)[0] if "." in stored.name else stored.name
    extension = stored.preview_key.rsplit(".", 1)[-1]
    disposition = content_disposition_header(False, f"{stem}-preview.{extension}")
    response["Content-Disposition"] = disposition or "inline"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=86400"
    response["ETag"] = f'"{stored.sha256}-{SIZE}"'
    return response
