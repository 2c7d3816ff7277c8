"""Exports of the archive: a ZIP an auditor hands to a third party, who can
check it offline with ``scripts/verify_export.py``. The rules, enforced here:

1. An export belongs to a case whose results may be opened
   (``cases.case_for_results``); requesting one is exactly one audit event
   (``EXPORT_REQUESTED``), downloading it exactly one more (``EXPORT_DOWNLOADED``),
   both written by ``compliance.audit.audit_event_record``.
2. Its content comes from the retention records alone, read through the
   workspace's one chain reader (``compliance.workspace.chain``): each
   record's canonical JSON is checked against its hash (and HMAC) before use,
   and a record that fails fails the export. A search export selects its
   message versions through the archive's index (``ArchivedMessage``), never
   through the live chat. Attachments are the archived bytes (the archive
   storage's copy, else the company file storage's), each checked against its
   SHA-256 before it is included. An archive copy that does not match is
   refused, never replaced by another copy: the export is still built, and the
   file is named as refused with the reason in the manifest
   (``refused_attachments``), the JSON Lines (``"refused"``), the mbox (a
   ``….refused.txt`` part) and the transcript (its title page and the version).
3. It is built by the ``compliance.export`` task with bounded memory: records
   are read one at a time, every part is written to a temporary file as it
   goes, and the transcript is split into volumes
   (``formats.TRANSCRIPT_VOLUME`` versions). Only the list of covering
   records, the people seen and the distinct files' availability (a few
   numbers each) grow with the export. Membership at each moment is replayed
   from the chain's first record, so earlier records are read too (not kept).
4. The ZIP holds ``messages.mbox`` (RFC 5322, one message per version),
   ``messages.jsonl`` (one object per version, every field), ``transcript.pdf``,
   ``records/…json`` (the covering records exactly as archived) and
   ``manifest.json`` with the SHA-256 and size of every other file, plus
   ``manifest.sha256``. Only ``export_build`` changes an export after its
   request: progress, then ``DONE`` with the stored ZIP's key, size and hash,
   or ``FAILED`` with the reason.

Modules: ``parameters`` (what an export covers), ``services`` (request,
sweep, download, build's claim), ``selectors``, ``walk`` (the versions from
the records), ``build`` (the ZIP), ``formats`` (mbox, JSON Lines, PDF).
"""

from compliance.workspace.exports.build import FORMAT
from compliance.workspace.exports.parameters import (
    FORMATS,
    clean_formats,
    clean_parameters,
    describe_scope,
    search_criteria,
    search_parameters,
)
from compliance.workspace.exports.selectors import conversation_titles, export_for_case, exports_for_case
from compliance.workspace.exports.services import (
    ABANDONED_AFTER,
    EXPORT_TIME_LIMIT,
    STALE_QUEUED_AFTER,
    export_build,
    export_download,
    export_request,
    exports_requeue_stale,
)
from compliance.workspace.exports.walk import ExportError

__all__ = [
    "ABANDONED_AFTER",
    "EXPORT_TIME_LIMIT",
    "FORMAT",
    "FORMATS",
    "STALE_QUEUED_AFTER",
    "ExportError",
    "clean_formats",
    "clean_parameters",
    "conversation_titles",
    "describe_scope",
    "export_build",
    "export_download",
    "export_for_case",
    "export_request",
    "exports_for_case",
    "exports_requeue_stale",
    "search_criteria",
    "search_parameters",
]
