"""What may be stored: checked on the bytes, never on the name or the
browser's word. Anything not on the allowlist is refused."""

import unicodedata
import zipfile
from pathlib import Path

from PIL import Image

from archive.errors import FileRefused

# Detected type -> the extensions a name may have for it.
ALLOWED: dict[str, tuple[str, ...]] = {
    "application/pdf": ("pdf",),
    "image/png": ("png",),
    "image/jpeg": ("jpg", "jpeg", "jfif"),
    "image/gif": ("gif",),
    "image/webp": ("webp",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ("docx",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("xlsx",),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ("pptx",),
    "application/vnd.oasis.opendocument.text": ("odt",),
    "application/vnd.oasis.opendocument.spreadsheet": ("ods",),
    "text/plain": ("txt", "md", "log", "text"),
    "text/csv": ("csv",),
}
MAX_IMAGE_PIXELS = 50_000_000
NAME_MAX = 200
# Longer than this after the last dot, it is not an extension but part of the name.
EXTENSION_MAX = 16

_SIGNATURES: list[tuple[bytes, str]] = [
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
]
_OOXML = {
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}


def clean_name(name: str) -> str:
    """The display name, refused if it tries to be a path or hide its type."""
    name = unicodedata.normalize("NFC", name or "").strip()
    if not name:
        raise FileRefused("bad_name", "The file has no name.")
    if "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        raise FileRefused("bad_name", "A file name cannot contain a path.")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name):
        raise FileRefused("bad_name", "A file name cannot contain control characters.")
    if len(name) > NAME_MAX:
        # Shortened in the middle, as a chat shows a long name: the start and the
        # extension (which the type check reads) stay, "…" marks the cut.
        stem, dot, ext = name.rpartition(".")
        if dot and stem and _extension(name) is not None:
            name = stem[: NAME_MAX - len(ext) - 2].rstrip() + "…." + ext
        else:
            name = name[: NAME_MAX - 1].rstrip() + "…"
    return name.lstrip(".") or "file"


def _extension(name: str) -> str | None:
    """What follows the last dot, lower case; None when there is no dot or that is
    no extension but part of the name ("Minutes 12.05. budget", a name cut short)."""
    if "." not in name:
        return None
    tail = name.rsplit(".", 1)[1]
    if len(tail) > EXTENSION_MAX or any(ch.isspace() or ch == "…" for ch in tail):
        return None
    return tail.lower()


def sniff(path: Path) -> str:
    """The content type of the file at ``path``, from its bytes; refused if unknown."""
    with path.open("rb") as handle:
        head = handle.read(8192)
    for signature, content_type in _SIGNATURES:
        if head.startswith(signature):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(path)
    if head and _is_text(head):
        return "text/plain"
    raise FileRefused(
        "type_not_allowed",
        "This kind of file cannot be shared here. Allowed: PDF, images (PNG, JPEG, GIF, WebP), "
        "Office and OpenDocument files, plain text and CSV.",
    )


def _sniff_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "mimetype" in names:
                declared = archive.read("mimetype").decode("ascii", "replace").strip()
                if declared in ALLOWED:
                    return declared
            if "[Content_Types].xml" in names:
                for prefix, content_type in _OOXML.items():
                    if any(n.startswith(prefix) for n in names):
                        return content_type
    except (zipfile.BadZipFile, OSError, KeyError):
        pass
    raise FileRefused("type_not_allowed", "ZIP archives cannot be shared here, only Office documents.")


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut at the end of the sample is still text.
        if error.start < len(head) - 4:
            return False
    lowered = head.lstrip().lower()
    # Markup that a browser would run is never "plain text".
    return not lowered.startswith((b"<!doctype html", b"<html", b"<svg", b"<?xml", b"<script"))


def check_name_matches(name: str, content_type: str) -> str:
    """Refuse a name whose extension claims another type; add one if missing."""
    extensions = ALLOWED[content_type]
    if content_type == "text/plain" and name.lower().endswith(".csv"):
        return "text/csv"
    extension = _extension(name)
    if extension is None:
        return content_type
    if extension not in extensions:
        raise FileRefused(
            "type_mismatch",
            f"The file is named .{extension} but its content is {describe(content_type)}.",
        )
    return content_type


def check_image(path: Path, content_type: str) -> tuple[int, int] | None:
    """Width and height of an image, refusing decompression bombs and broken files."""
    if not content_type.startswith("image/"):
        return None
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, Image.DecompressionBombError):
        raise FileRefused("bad_image", "This picture is damaged or cannot be read.") from None
    if width * height > MAX_IMAGE_PIXELS:
        raise FileRefused(
            "image_too_large", f"Pictures are limited to {MAX_IMAGE_PIXELS // 1_000_000} megapixels."
        )
    return width, height


def describe(content_type: str) -> str:
    return {
        "application/pdf": "a PDF",
        "text/plain": "plain text",
        "text/csv": "CSV",
    }.get(content_type, content_type.split("/")[-1].split(".")[-1].upper())
