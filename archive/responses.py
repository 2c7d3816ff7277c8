"""Streaming a stored file out, after the caller has checked who may have it.

Files are sent as attachments unless they are raster images; every response
forbids sniffing and runs under a CSP sandbox, so a file can never act as a
page of this site. Single byte ranges are honoured (resumed downloads, media
seeking). On S3 the caller may instead hand out a short-lived presigned URL.
"""

import re
from collections.abc import Iterator
from typing import TypeVar

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

from archive.models import INLINE_TYPES, StoredFile

CHUNK = 256 * 1024
R = TypeVar("R", HttpResponse, StreamingHttpResponse, FileResponse)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _headers(response: R, stored: StoredFile, inline: bool) -> R:
    response["Content-Disposition"] = content_disposition_header(not inline, stored.name) or "attachment"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = f'"{stored.sha256}"'
    return response


def _read_range(key: str, start: int, length: int) -> Iterator[bytes]:
    with default_storage.open(key, "rb") as handle:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


def file_response(
    request: HttpRequest, stored: StoredFile, *, want_inline: bool = False
) -> HttpResponse | StreamingHttpResponse:
    inline = want_inline and stored.content_type in INLINE_TYPES
    match = _RANGE.match(request.headers.get("Range", "").strip())
    if match and (match.group(1) or match.group(2)):
        first, last = match.groups()
        if first:
            start = int(first)
            end = min(int(last), stored.size - 1) if last else stored.size - 1
        else:  # the last N bytes
            start = max(0, stored.size - int(last))
            end = stored.size - 1
        if start > end or start >= stored.size:
            refused = HttpResponse(status=416)
            refused["Content-Range"] = f"bytes */{stored.size}"
            return _headers(refused, stored, inline)
        length = end - start + 1
        partial = StreamingHttpResponse(
            _read_range(stored.storage_key, start, length), status=206, content_type=stored.content_type
        )
        partial["Content-Length"] = str(length)
        partial["Content-Range"] = f"bytes {start}-{end}/{stored.size}"
        return _headers(partial, stored, inline)
    whole = FileResponse(default_storage.open(stored.storage_key, "rb"), content_type=stored.content_type)
    whole["Content-Length"] = str(stored.size)
    return _headers(whole, stored, inline)


def presigned_url(stored: StoredFile, *, want_inline: bool = False) -> str | None:
    """A short-lived direct link on S3 (``None`` on other storage backends)."""
    if settings.KONTOR_STORAGE != "s3":
        return None
    inline = want_inline and stored.content_type in INLINE_TYPES
    # django-storages' S3Storage.url takes response headers and signs for
    # its configured lifetime (S3_URL_EXPIRY_SECONDS).
    url = default_storage.url(  # type: ignore[call-arg]
        stored.storage_key,
        parameters={
            "ResponseContentDisposition": content_disposition_header(not inline, stored.name),
            "ResponseContentType": stored.content_type,
        },
    )
    return str(url)
