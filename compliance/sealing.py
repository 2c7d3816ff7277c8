"""The daily seal over every chain head, and its anchors outside the database.

``seal_heads`` reads the head (last position and hash) of every conversation's
chain from the records themselves, writes them as one canonical JSON document
that names the seal before it, and anchors it twice outside the database: a
copy in the archive storage (Object Lock when on S3) and, when a timestamp
authority is configured, an RFC 3161 token over its SHA-256. A database
superuser who removes a chain, or rewrites one consistently with fresh hashes
and links, no longer matches the heads the seals name; one who rewrites the
seals as well no longer matches their storage copies and tokens; one who
removes the newest seals leaves records unsealed for longer than a day allows.
``verify_seals`` checks all of it for ``manage.py verify_archive``.

The timestamp authority is asked outside any transaction: an SQLite write lock
(which stops every writer) must not wait on the network. On PostgreSQL a
session advisory lock lets one sealer run at a time while blocking nobody else;
on SQLite the position is re-checked in the IMMEDIATE transaction that writes
the seal, and a run that lost the race drafts again. A failing authority
never loses the seal: it is written without a token, the compliance contacts
are told, and the next seal, which names this one, is stamped again.
"""

import base64
import hmac
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.db.models.functions import Now
from rfc3161_client import (
    HashAlgorithm,
    TimestampRequestBuilder,
    TimeStampResponse,
    Verifier,
    VerifierBuilder,
    decode_timestamp_response,
)

from compliance import archive_store
from compliance.audit import audit_event_record
from compliance.models import GENESIS_HASH, AuditEvent, RetentionExtension, RetentionRecord, Seal
from compliance.records import canonical_json, record_hash, record_hmac
from compliance.services import alert_contacts

if TYPE_CHECKING:
    from compliance.verification import Report

logger = logging.getLogger(__name__)

FORMAT = "kontor.seal/1"
# Any constant other than the journal's: the advisory lock that orders seals.
_SEAL_LOCK_KEY = 4_711_2027
# How long the timestamp authority may take to answer.
TSA_TIMEOUT_SECONDS = 30
# How far a token's time may lie from the seal's own (database) time.
TSA_CLOCK_TOLERANCE = timedelta(minutes=5)
# Seals run daily: a record older than this and newer than the newest seal
# means the seals stopped, or their tail was removed.
SEAL_OVERDUE = timedelta(days=2)
_ATTEMPTS = 3


class TimestampError(Exception):
    """The timestamp authority could not be reached or gave no valid token."""


@dataclass(frozen=True)
class _Draft:
    seq: int
    previous_hash: str
    content: bytes
    sha256: str
    chains: int


def seal_heads() -> Seal:
    """Seal every chain head now; returns the new seal."""
    with _one_sealer():
        for _ in range(_ATTEMPTS):
            draft = _draft()
            token, failure = b"", ""
            if settings.KONTOR_TSA_URL:
                try:
                    token = timestamp(draft.content)
                except TimestampError as error:
                    failure = str(error)
            seal = _write(draft, token)
            if seal is None:
                continue  # another run took this position meanwhile: draft again
            if failure:
                _alert_unstamped(seal, failure)
            return seal
    raise RuntimeError(f"Could not take a seal position in {_ATTEMPTS} attempts.")


@contextmanager
def _one_sealer() -> Iterator[None]:
    """PostgreSQL: one sealer at a time, through a session lock that blocks only
    other sealers, so no transaction stays open while the authority answers."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [_SEAL_LOCK_KEY])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_SEAL_LOCK_KEY])


def _database_now() -> datetime:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')")
            return datetime.fromisoformat(cursor.fetchone()[0]).replace(tzinfo=UTC)
        cursor.execute("SELECT statement_timestamp()")
        now: datetime = cursor.fetchone()[0]
        return now.astimezone(UTC)


def _heads() -> list[tuple[int, int, str, int]]:
    """(conversation, last seq, its sha256, records in the chain) of every chain,
    from the records themselves, in one statement (one consistent view)."""
    table = RetentionRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT r.conversation_id, r.seq, r.sha256, g.n FROM {table} r "  # noqa: S608 (our table name)
            f"JOIN (SELECT conversation_id, MAX(seq) AS m, COUNT(*) AS n FROM {table} "
            "GROUP BY conversation_id) g ON g.conversation_id = r.conversation_id AND g.m = r.seq "
            "ORDER BY r.conversation_id"
        )
        return [(int(c), int(s), str(h), int(n)) for c, s, h, n in cursor.fetchall()]


def _draft() -> _Draft:
    latest = Seal.objects.order_by("-seq").values_list("seq", "sha256").first()
    seq, previous_hash = (latest[0] + 1, latest[1]) if latest else (1, GENESIS_HASH)
    sealed_at = _database_now()
    heads = _heads()
    payload = {
        "format": FORMAT,
        "seq": seq,
        "previous_hash": previous_hash,
        "sealed_at": sealed_at.isoformat(timespec="milliseconds"),
        "chains": len(heads),
        "records": sum(n for *_, n in heads),
        "heads": [{"conversation": c, "seq": s, "sha256": h} for c, s, h, _ in heads],
    }
    content = canonical_json(payload)
    return _Draft(seq, previous_hash, content, record_hash(content), len(heads))


def _retain_until() -> date | None:
    """As long as the longest-kept record (extensions included) it covers."""
    dates = [
        RetentionRecord.objects.aggregate(m=Max("retain_until"))["m"],
        RetentionExtension.objects.aggregate(m=Max("retain_until"))["m"],
    ]
    return max((d for d in dates if d is not None), default=None)


@transaction.atomic
def _write(draft: _Draft, token: bytes) -> Seal | None:
    """Take the draft's position if it is still free (SQLite: this IMMEDIATE
    transaction holds the write lock; a taken position is also refused by the
    unique seq and previous_hash)."""
    latest = Seal.objects.order_by("-seq").values_list("seq", "sha256").first()
    if (latest or (0, GENESIS_HASH)) != (draft.seq - 1, draft.previous_hash):
        return None
    name = archive_store.seal_name(draft.seq, draft.sha256)
    archive_store.put(name, draft.content, _retain_until())
    if token:
        # The token beside the seal's copy: removing it from the database shows.
        archive_store.put(token_name(name), token, _retain_until())
    seal = Seal.objects.create(
        seq=draft.seq,
        previous_hash=draft.previous_hash,
        sha256=draft.sha256,
        hmac=record_hmac(draft.content),
        canonical_json=draft.content.decode("utf-8"),
        chains=draft.chains,
        tsa_url=settings.KONTOR_TSA_URL if token else "",
        tsa_token=base64.b64encode(token).decode("ascii"),
        storage_name=name,
    )
    audit_event_record(
        kind=AuditEvent.Kind.SEALED,
        actor=None,
        detail={"seq": seal.seq, "sha256": seal.sha256, "chains": seal.chains, "stamped": bool(token)},
    )
    return seal


def _alert_unstamped(seal: Seal, failure: str) -> None:
    alert_contacts(
        f"Seal {seal.seq} has no timestamp",
        f"Kontor wrote seal {seal.seq} over {seal.chains} chain head(s) without an RFC 3161 timestamp: "
        f"the timestamp authority at {settings.KONTOR_TSA_URL} failed ({failure}). The seal and its "
        "storage copy are written; the next seal, which names this one, is stamped again.",
    )


# --- RFC 3161 ---------------------------------------------------------------


def timestamp(content: bytes) -> bytes:
    """Ask the configured authority for a token over SHA-256(content); returns
    the token (DER), checked against the request's nonce and the TSA's CA."""
    request = TimestampRequestBuilder().data(content).hash_algorithm(HashAlgorithm.SHA256).build()
    url = settings.KONTOR_TSA_URL
    http = urllib.request.Request(  # noqa: S310 (the setting only takes http and https)
        url,
        data=request.as_bytes(),
        headers={"Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(http, timeout=TSA_TIMEOUT_SECONDS) as reply:  # noqa: S310
            body = reply.read()
    except (OSError, urllib.error.URLError) as error:
        raise TimestampError(f"no answer: {error}") from error
    try:
        response = decode_timestamp_response(body)
        _verifier(nonce=request.nonce).verify(response, request.message_imprint.message)
    except Exception as error:
        raise TimestampError(f"no valid token: {error}") from error
    token: bytes = response.time_stamp_token()
    return token


def _verifier(nonce: int | None = None) -> Verifier:
    if not settings.KONTOR_TSA_CA_FILE:
        raise TimestampError("KONTOR_TSA_CA_FILE is not set, so no token can be checked")
    certificates = x509.load_pem_x509_certificates(Path(settings.KONTOR_TSA_CA_FILE).read_bytes())
    builder = VerifierBuilder(nonce=nonce)
    for certificate in certificates:
        if certificate.subject == certificate.issuer:
            builder = builder.add_root_certificate(certificate)
        else:
            builder = builder.add_intermediate_certificate(certificate)
    return builder.build()


def _der_length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def token_response(token: bytes) -> TimeStampResponse:
    """A stored token as the TimeStampResp the library parses: the token after
    a PKIStatusInfo of "granted" (RFC 3161 section 2.4.2)."""
    body = b"\x30\x03\x02\x01\x00" + token
    return decode_timestamp_response(b"\x30" + _der_length(len(body)) + body)


# --- Verification -----------------------------------------------------------


def token_name(seal_name: str) -> str:
    """Where a seal's RFC 3161 token lies in the archive storage, beside the seal."""
    return seal_name.removesuffix(".json") + ".tsr"


def verify_seals(report: "Report") -> None:
    """Check the seals and their anchors, and every head they name.

    Each seal: its content against its hash (and HMAC when keyed), its link to
    the seal before it, its storage copy byte for byte, its token (signed by
    the configured authority over exactly its SHA-256, at about its time), and
    each head it names still a record at that position with that hash.
    Finally, no record older than ``SEAL_OVERDUE`` may be newer than the
    newest seal.
    """
    expected_seq, expected_previous = 1, GENESIS_HASH
    known: dict[str, tuple[int, int]] = {}  # sha256 -> (conversation, seq) of records seen
    broken_chains: set[int] = set()
    verifier: Verifier | None = None
    verifier_error = ""
    newest: Seal | None = None
    for seal in Seal.objects.order_by("seq").iterator():
        report.seals += 1
        newest = seal
        name = f"seal {seal.seq} (id {seal.pk})"
        if seal.seq != expected_seq:
            report.problems.append(f"{name}: expected seal {expected_seq}: a seal is missing or reordered")
        elif seal.previous_hash != expected_previous:
            report.problems.append(f"{name}: does not link to the seal before it")
        expected_seq, expected_previous = seal.seq + 1, seal.sha256
        raw = seal.canonical_json.encode("utf-8")
        if record_hash(raw) != seal.sha256:
            report.problems.append(f"{name}: its content does not match its hash (altered)")
            continue
        if (
            settings.KONTOR_ARCHIVE_HMAC_KEY
            and seal.hmac
            and not hmac.compare_digest(record_hmac(raw), seal.hmac)
        ):
            report.problems.append(f"{name}: its HMAC does not match")
        payload: dict[str, Any] = json.loads(raw)
        heads = payload.get("heads", [])
        if (payload.get("format"), payload.get("seq"), payload.get("previous_hash"), len(heads)) != (
            FORMAT,
            seal.seq,
            seal.previous_hash,
            seal.chains,
        ):
            report.problems.append(f"{name}: its content describes another seal")
        _check_copy(seal, raw, name, report)
        _check_token_copy(seal, name, report)
        if seal.tsa_token:
            report.stamped += 1
            if verifier is None and not verifier_error:
                try:
                    verifier = _verifier()
                except Exception as error:
                    verifier_error = str(error)
            if verifier is None:
                report.problems.append(f"{name}: its timestamp cannot be checked: {verifier_error}")
            else:
                _check_token(seal, payload, verifier, name, report)
        _check_heads(heads, known, broken_chains, name, report)
    _check_overdue(newest, report)


def _check_copy(seal: Seal, raw: bytes, name: str, report: "Report") -> None:
    expected_name = archive_store.seal_name(seal.seq, seal.sha256)
    if seal.storage_name != expected_name:
        report.problems.append(f"{name}: it names another storage copy ({seal.storage_name!r})")
    try:
        copy = archive_store.get(expected_name)
    except Exception as error:
        report.problems.append(f"{name}: its copy in the archive storage cannot be read: {error}")
        return
    if copy is None:
        report.problems.append(
            f"{name}: its copy in the archive storage ({expected_name}) is missing: the seal was "
            "rewritten or its copy removed"
        )
    elif copy != raw:
        report.problems.append(f"{name}: its copy in the archive storage differs from the database")


def _check_token_copy(seal: Seal, name: str, report: "Report") -> None:
    try:
        copy = archive_store.get(token_name(archive_store.seal_name(seal.seq, seal.sha256)))
    except Exception as error:
        report.problems.append(f"{name}: its timestamp's copy in the archive storage cannot be read: {error}")
        return
    token = base64.b64decode(seal.tsa_token) if seal.tsa_token else b""
    if copy is not None and not token:
        report.problems.append(f"{name}: its RFC 3161 timestamp was removed from the database")
    elif token and copy is None:
        report.problems.append(f"{name}: its timestamp's copy in the archive storage is missing")
    elif token and copy != token:
        report.problems.append(f"{name}: its timestamp differs from the copy in the archive storage")


def _check_token(
    seal: Seal, payload: dict[str, Any], verifier: Verifier, name: str, report: "Report"
) -> None:
    try:
        response = token_response(base64.b64decode(seal.tsa_token, validate=True))
        verifier.verify(response, bytes.fromhex(seal.sha256))
    except Exception as error:
        report.problems.append(
            f"{name}: its RFC 3161 timestamp is not a valid signature over its hash by the "
            f"configured authority: {error}"
        )
        return
    try:
        sealed_at = datetime.fromisoformat(payload["sealed_at"])
    except (KeyError, TypeError, ValueError):
        report.problems.append(f"{name}: its content has no valid sealed_at time")
        return
    drift = abs(response.tst_info.gen_time - sealed_at)
    if drift > TSA_CLOCK_TOLERANCE:
        report.problems.append(
            f"{name}: its timestamp says {response.tst_info.gen_time.isoformat()}, "
            f"{int(drift.total_seconds())} s away from the seal's time {payload['sealed_at']}"
        )


def _check_heads(
    heads: list[dict[str, Any]],
    known: dict[str, tuple[int, int]],
    broken_chains: set[int],
    name: str,
    report: "Report",
) -> None:
    unknown = [str(h.get("sha256")) for h in heads if h.get("sha256") not in known]
    for start in range(0, len(unknown), 500):
        known.update(
            (sha, (conversation, seq))
            for conversation, seq, sha in RetentionRecord.objects.filter(
                sha256__in=unknown[start : start + 500]
            ).values_list("conversation_id", "seq", "sha256")
        )
    for head in heads:
        conversation: Any = head.get("conversation")
        seq, sha = head.get("seq"), str(head.get("sha256"))
        found = known.get(sha)
        if found == (conversation, seq) or conversation in broken_chains:
            continue
        broken_chains.add(conversation)
        where = f"record {seq} ({sha})"
        if found is None:
            report.problems.append(
                f"{name}: conversation {conversation}: the head it sealed, {where}, is no longer in "
                "the archive: the chain was removed or rewritten"
            )
        else:
            report.problems.append(
                f"{name}: conversation {conversation}: the head it sealed, {where}, now stands at "
                f"conversation {found[0]}, record {found[1]}: the chain was rewritten"
            )


def _check_overdue(newest: Seal | None, report: "Report") -> None:
    unsealed = RetentionRecord.objects.filter(created_at__lt=Now() - SEAL_OVERDUE)
    if newest is not None:
        unsealed = unsealed.filter(created_at__gt=newest.created_at)
    late = unsealed.order_by("created_at").values_list("conversation_id", "seq").first()
    if late is None:
        return
    since = f"since seal {newest.seq} of {newest.created_at:%Y-%m-%d %H:%M} UTC" if newest else "by any seal"
    report.problems.append(
        f"conversation {late[0]}, record {late[1]}: not sealed {since} although it is older than "
        f"{SEAL_OVERDUE.days} days: the daily seal stopped, or the newest seals were removed"
    )
