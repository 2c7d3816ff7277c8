"""Reading uploads: an upload handler that stops reading a file as soon as it is
over the limit, and room for long file names in a multipart part's headers."""

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import multipartparser

# The most a multipart part's headers (Content-Disposition with the file name,
# Content-Type) may take. Django allows 1 KiB and refuses anything longer with its
# HTML "Bad Request (400)" page, so a file name of a few hundred characters (or
# fewer in a non-Latin script, 3-4 bytes a character) could not be uploaded at all.
# 64 KiB fits a name of 5,000 characters in any script; the name is then shortened
# for display (archive.validation.NAME_MAX). The bound still holds: the parser
# reads the headers in doubling chunks up to this size, once per part, and the
# number of parts stays limited by DATA_UPLOAD_MAX_NUMBER_FIELDS/FILES.
PART_HEADER_MAX_BYTES = 64 * 1024


def allow_long_file_names() -> None:
    """Raise Django's limit on a part's headers to ``PART_HEADER_MAX_BYTES``
    (a module constant the parser reads on every part; called once at start)."""
    # Not in django-stubs: the constant is internal to the parser.
    current: int = multipartparser.MAX_TOTAL_HEADER_SIZE  # type: ignore[attr-defined]
    multipartparser.MAX_TOTAL_HEADER_SIZE = max(current, PART_HEADER_MAX_BYTES)  # type: ignore[attr-defined]


class SizeLimitHandler(FileUploadHandler):
    """Goes first: counts bytes and stops the upload once the limit is passed,
    before the file is written anywhere."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > settings.KONTOR_UPLOAD_MAX_BYTES:
            self.exceeded = True
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None
