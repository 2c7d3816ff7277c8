"""The one reader of the archive chain for the auditor workspace: the
reconstruction (``compliance.workspace.reconstruct``) and the export
(``compliance.workspace.exports``) read records, people, membership and
files only through it, so they cannot drift apart. Its rules:

1. Records are read from the archive's tables alone (``RetentionRecord`` and
   its ``RecordContent``), in chain order, a bounded number at a time
   (``records.chain_read``); every one is named by one ``RecordRef``.
2. Each record's content is checked before anyone uses it: against its
   SHA-256, and against its HMAC when the archive is keyed and the record
   carries one (once a chain carries HMACs, a later record without one fails
   too). A record that does not prove itself is never handed out as intact:
   ``RecordRef.problem`` names it, and ``RecordRead.proven`` refuses it
   (``RecordAltered``). The reconstruction shows its versions marked as from
   an altered record; an export is refused as a whole.
3. Membership is replayed from the journal's membership events from the
   chain's start (``people.Membership``). Where the chain has a gap (records
   purged after retention, missing, or unreadable), or begins without the
   conversation's creation, the members the next readable record captured are
   the new starting point, wound back over that record's own events.
4. People are named as the latest record read captured them
   (``people.People``), with a stand-in for anyone no record captured.
5. A file's bytes are the write-once archive copy, or where there is none the
   company file storage's, each only if it hashes to the SHA-256 its record
   holds (``files.file_fetch``). An archive copy that does not match is
   refused and never replaced by another copy: an altered archive must be
   seen, not papered over. The refusal says why (``FetchedFile.problem``).
"""

from compliance.workspace.chain.files import (
    ALTERED_COPY,
    ALTERED_STORED,
    GONE,
    FetchedFile,
    file_fetch,
)
from compliance.workspace.chain.people import JOINS, LEAVES, Member, Membership, People, Person
from compliance.workspace.chain.records import (
    RecordAltered,
    RecordRead,
    RecordRef,
    chain_read,
    content_checked,
)

__all__ = [
    "ALTERED_COPY",
    "ALTERED_STORED",
    "GONE",
    "JOINS",
    "LEAVES",
    "FetchedFile",
    "Member",
    "Membership",
    "People",
    "Person",
    "RecordAltered",
    "RecordRead",
    "RecordRef",
    "chain_read",
    "content_checked",
    "file_fetch",
]
