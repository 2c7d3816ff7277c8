"""Reconstruction: a conversation as it stood at a moment, from the archive alone.

The rules, enforced here (the chain itself is read through
``compliance.workspace.chain``, the reader the export uses too):

1. Only the records' content (``RecordContent.canonical_json``) is read, in
   chain order: never the live messenger tables, whose messages may have been
   edited, deleted or purged since.
2. Only records that can hold events up to the moment are read (their first
   day is not after the moment's day), one bounded chunk at a time, and only
   events made up to the moment count.
3. Every version of a message up to the moment is kept: edits are its
   history, a deletion keeps the deleted content, attachments travel with
   each version.
4. Members are replayed from the journal's membership events
   (``chain.Membership``). Where the chain has a gap (records purged after
   retention, or missing), the members the next readable record lists at its
   capture are the new starting point, wound back over that record's own events.
5. A page holds a bounded window of messages (keyset by message seq), so
   memory and output stay bounded however long the conversation is.
6. The conversation's chain is verified (``compliance.verification.verify``)
   and the result goes with the reconstruction; each record read is also
   checked against its own hash and HMAC, so a version from an altered record
   is marked.
7. Every file the page shows is fetched and checked against its SHA-256 before
   the page is drawn (``chain.file_fetch``): one whose archive copy was altered
   is shown as refused, with the reason, and never served.

Modules: ``results`` (what a reconstruction is made of), ``replay`` (reading
the chain up to a moment), ``listing`` (the archived conversations),
``files`` (where a record names a file).
"""

from compliance.workspace.chain import FetchedFile, Member, Person, RecordRef, file_fetch
from compliance.workspace.reconstruct.files import FileReference, file_reference
from compliance.workspace.reconstruct.listing import ArchivedConversation, archived_conversations
from compliance.workspace.reconstruct.replay import (
    PAGE_SIZE,
    RECORD_MARGIN,
    RECORDS_CHUNK,
    chain_check,
    reconstruct,
)
from compliance.workspace.reconstruct.results import (
    ArchivedFile,
    ChainCheck,
    MessageHistory,
    NotArchived,
    Notice,
    Reconstruction,
    Version,
)

__all__ = [
    "PAGE_SIZE",
    "RECORDS_CHUNK",
    "RECORD_MARGIN",
    "ArchivedConversation",
    "ArchivedFile",
    "ChainCheck",
    "FetchedFile",
    "FileReference",
    "Member",
    "MessageHistory",
    "NotArchived",
    "Notice",
    "Person",
    "Reconstruction",
    "RecordRef",
    "Version",
    "archived_conversations",
    "chain_check",
    "file_fetch",
    "file_reference",
    "reconstruct",
]
