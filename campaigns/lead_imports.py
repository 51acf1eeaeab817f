"""CSV files from the portal: leads imported in the background, do-not-call numbers at once.

A lead file may hold a million rows, so no step holds it whole. The upload view streams it,
record by record, into `LeadImportChunk` rows of at most CHUNK_ROWS records (each prefixed with
its row number in the file); every dialer tick then claims a few chunks with SKIP LOCKED, so any
number of workers share an import, and passes each to `services.import_leads`. A chunk is deleted
in the transaction that imports it: a worker killed mid-chunk leaves it to the next one.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import phonenumbers
from django.db import OperationalError, connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from campaigns import services
from campaigns.models import (
    Campaign,
    CampaignStatus,
    DoNotCall,
    Lead,
    LeadImport,
    LeadImportChunk,
    LeadImportReject,
    LeadImportStatus,
    LeadStatus,
)
from campaigns.read_ahead import ReadAhead
from campaigns.services import LeadRow, ReadRows, classify_number, dialer_policy, read_numbers
from voiso_byob.db import prepared_cursor
from voiso_byob.errors import DomainError
from voiso_byob.models import AuditEvent, ContactCenter
from voiso_byob.services import Actor

logger = logging.getLogger("campaigns.lead_imports")

# Rows per stored chunk, imported in one transaction: fewer, larger chunks spend less on commits and
# round trips per row (bench/lead_import.py: 2,000 gave 0.29 x COPY, 5,000 0.41 x, on a busy
# machine), and a chunk still takes well under a second, the most a worker's next tick waits for it.
CHUNK_ROWS = 5_000
MAX_IMPORT_ROWS = 2_000_000
MAX_COLUMNS = 100
# Do-not-call files are imported in the request that uploads them.
MAX_DNC_ROWS = 10_000
# Lead context becomes SIP headers on the INVITE: a token for the name, no control characters
# (a CR/LF in a value would let a file inject headers of its own) and a bounded length.
HEADER_NAME = re.compile(r"^X-[A-Za-z0-9-]{1,60}$", re.IGNORECASE)
MAX_CONTEXT_VALUE = 512
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_KNOWN = {"number": "phone_number", "name": "name", "source": "source", "priority": "priority"}
_TEXT_LIMITS = {"name": 150, "source": 150}


# --- reading a file -------------------------------------------------------------------------


def _text(upload: IO[bytes]) -> io.TextIOWrapper:
    # utf-8-sig: spreadsheets save CSV with a byte-order mark. newline="": csv handles line ends.
    return io.TextIOWrapper(upload, encoding="utf-8-sig", newline="")


def _refused(message: str) -> DomainError:
    return DomainError("invalid_csv", message, field="file")


def _records(upload: IO[bytes]) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header row and an iterator of (row number, fields) for the non-blank rows after it.

    Decoding and CSV errors surface as DomainError on the `file` field, wherever in the file.
    """
    reader = csv.reader(_text(upload))

    def guarded() -> Iterator[tuple[int, list[str]]]:
        try:
            end = 0
            for fields in reader:
                # A quoted value may span lines: a record's row is the line it starts on.
                start, end = end + 1, reader.line_num
                if any(value.strip() for value in fields):
                    yield start, fields
        except UnicodeDecodeError:
            raise _refused(f"Row {reader.line_num + 1} is not UTF-8 text; save the file as CSV UTF-8.")
        except csv.Error as exc:
            raise _refused(f"Row {reader.line_num} cannot be read as CSV: {exc}.") from None

    rows = guarded()
    try:
        _, header = next(rows)
    except StopIteration:
        raise _refused("The file is empty.") from None
    return [column.strip() for column in header], rows


def _check_lead_columns(columns: list[str]) -> None:
    if len(columns) > MAX_COLUMNS:
        raise _refused(f"At most {MAX_COLUMNS} columns.")
    lowered = [column.lower() for column in columns]
    if "number" not in lowered:
        raise _refused(
            "The first row must name the columns, one of them Number (also Name, Source, Priority, X-…)."
        )
    if len(set(lowered)) != len(lowered):
        raise _refused("Two columns have the same name.")
    for column in columns:
        if column.lower().startswith("x-") and not HEADER_NAME.match(column):
            raise _refused(
                f"Column {column[:40]!r} cannot be a SIP header: use letters, digits and hyphens after X-."
            )


@transaction.atomic
def start_lead_import(*, campaign: Campaign, upload: IO[bytes], filename: str, by: Actor) -> LeadImport:
    """Stores the file in chunks for the workers; refuses it whole (nothing stored) if unreadable."""
    if campaign.status in (CampaignStatus.STOPPED, CampaignStatus.COMPLETED):
        raise DomainError("campaign_closed", "Leads cannot be added to a finished campaign.", status=409)
    columns, rows = _records(upload)
    _check_lead_columns(columns)
    lead_import = LeadImport.objects.create(
        contact_center=campaign.contact_center,
        campaign=campaign,
        created_by=by if hasattr(by, "email") else None,
        filename=filename[:255],
        columns=columns,
    )
    buffer, writer = _new_chunk_buffer()
    count = chunk_rows = first_row = 0
    for line, fields in rows:
        if count >= MAX_IMPORT_ROWS:
            raise _refused(f"At most {MAX_IMPORT_ROWS:,} rows per file; split it.")
        if chunk_rows == 0:
            first_row = line
        writer.writerow([line, *fields])
        count += 1
        chunk_rows += 1
        if chunk_rows == CHUNK_ROWS:
            _save_chunk(lead_import, first_row, buffer.getvalue())
            buffer, writer = _new_chunk_buffer()
            chunk_rows = 0
    if chunk_rows:
        _save_chunk(lead_import, first_row, buffer.getvalue())
    if count == 0:
        raise _refused("The file has a header row but no leads.")
    lead_import.rows = count
    lead_import.save(update_fields=["rows", "chunks"])
    AuditEvent.record(
        center=campaign.contact_center,
        by=by,
        action="campaign.lead_import_started",
        target=campaign,
        changes={"file": lead_import.filename, "rows": count},
    )
    return lead_import


def _new_chunk_buffer() -> tuple[io.StringIO, Any]:
    buffer = io.StringIO()
    return buffer, csv.writer(buffer)


_INSERT_CHUNK = (
    'INSERT INTO "campaigns_leadimportchunk" (lead_import_id, "index", first_row, text) '
    "VALUES (%s, %s, %s, %s)"
)


def _save_chunk(lead_import: LeadImport, first_row: int, text: str) -> None:
    """One INSERT per chunk, its text bound on the server.

    Django binds parameters into the statement's text, and psycopg keeps the last hundred texts
    it ran (to prepare the frequent ones): with the chunk inside, memory grew with the file.
    """
    fk = LeadImportChunk._meta.get_field("lead_import").get_db_prep_save(lead_import.pk, connection)
    with prepared_cursor() as cursor:
        cursor.execute(
            _INSERT_CHUNK,
            [fk, lead_import.chunks, first_row, text],
        )
    lead_import.chunks += 1


# --- importing chunks (the dialer workers, each tick) --------------------------------------


def process_lead_imports(*, limit_chunks: int = 5, until: float | None = None) -> int:
    """Imports up to `limit_chunks` stored chunks, oldest first; returns how many were taken.

    With `until` (a `time.monotonic()` moment), no new chunk starts after it (the first always
    does): a dialer worker imports in what is left of its tick's second, so its ticks stay about a
    second apart while a file of a million rows goes in at the rate the import allows, not at one
    chunk per tick (bench/lead_import.py).
    """
    done = 0
    while done < limit_chunks and (done == 0 or until is None or time.monotonic() < until):
        if not _process_next_chunk():
            break
        done += 1
    return done


def _process_next_chunk() -> bool:
    failed: tuple[Any, str] | None = None
    with transaction.atomic():
        _commit_without_waiting_for_disk()
        # SKIP LOCKED: workers running side by side each take different chunks. The second one
        # taken is this worker's next: read ahead while this one is written, and left alone by
        # the other workers meanwhile.
        taken = list(
            LeadImportChunk.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("lead_import__campaign__contact_center")
            .order_by("pk")[:2]
        )
        if not taken:
            return False
        chunk = taken[0]
        try:
            with transaction.atomic():
                _import_chunk(chunk, following=taken[1] if len(taken) > 1 else None)
        except DomainError as exc:
            failed = (chunk.lead_import_id, exc.message)
        except OperationalError:
            raise
        except Exception:
            # A chunk that cannot be imported must not be retried by every tick forever.
            logger.exception("lead import %s: chunk %d failed", chunk.lead_import_id, chunk.index)
            failed = (chunk.lead_import_id, "The import stopped on an unexpected error.")
        if failed is not None:
            _fail(*failed)
    return True


def _commit_without_waiting_for_disk() -> None:
    """The chunk's transaction commits without waiting for its WAL to reach the disk.

    The commits of a 100,000-row file took 1.47 s, 1.01 s without this (bench/lead_import.py at
    load 1-3; what is left is the deferred foreign-key checks of the chunk's rows). Losing such a
    commit in a crash loses nothing: the chunk is deleted in the same transaction as its leads,
    rejects and counts are written, so a lost commit leaves the chunk to be imported again.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _fail(lead_import_id: Any, message: str) -> None:
    LeadImportChunk.objects.filter(lead_import_id=lead_import_id).delete()
    LeadImport.objects.filter(pk=lead_import_id).update(
        status=LeadImportStatus.FAILED, error=message[:255], finished_at=timezone.now()
    )


@dataclass(frozen=True, slots=True)
class _ReadChunk:
    """A chunk's records read: the well-formed ones' numbers, and the rows rejected for their shape."""

    lines: list[int]  # the file's row of each well-formed record, by its index in `numbers`
    numbers: ReadRows
    malformed: list[tuple[int, str, str]]  # (row, number as written, reason)


def _read_chunk(text: str, columns: tuple[str, ...], region: str) -> _ReadChunk:
    """The records of a chunk's text read and checked: pure, so a thread may run it ahead."""
    names = [_KNOWN.get(column.lower(), column) for column in columns]
    kinds = _column_kinds(names)
    rows: list[LeadRow] = []
    lines: list[int] = []
    malformed: list[tuple[int, str, str]] = []
    for record in csv.reader(io.StringIO(text, newline="")):
        line, fields = int(record[0]), record[1:]
        row, reason = _lead_row(names, kinds, fields)
        if row is None:
            malformed.append((line, _field(names, fields, "phone_number")[:64], reason))
        else:
            rows.append(row)
            lines.append(line)
    return _ReadChunk(lines=lines, numbers=read_numbers(rows, region=region), malformed=malformed)


# Measured with bench/lead_import.py (100,000 rows, one worker): a 5,000-row chunk was about half
# our Python (reading its CSV, fields and numbers) and half waiting for PostgreSQL (COPY, the
# number checks, the commit), one after the other. Reading the next chunk in a thread while this
# one is written overlaps the two.
_read_ahead: ReadAhead[_ReadChunk] = ReadAhead(_read_chunk, name="lead-import-read")


def _import_chunk(chunk: LeadImportChunk, *, following: LeadImportChunk | None) -> None:
    lead_import = chunk.lead_import
    columns = tuple(lead_import.columns)
    region = dialer_policy(lead_import.campaign.contact_center).default_region
    read = _read_ahead.take(chunk.text, columns, region)
    if following is not None and following.lead_import_id == lead_import.pk:
        _read_ahead.start(following.text, columns, region)
    by = lead_import.created_by or "lead import"
    result = services.import_read_rows(campaign=lead_import.campaign, read=read.numbers, by=by)
    rejects = [
        LeadImportReject(lead_import=lead_import, row=line, number=number, reason=reason)
        for line, number, reason in read.malformed
    ]
    for item in result.rejected:
        rejects.append(_reject(lead_import, read.lines, item, item["reason"]))
    for item in result.duplicates:
        rejects.append(_reject(lead_import, read.lines, item, "duplicate"))
    LeadImportReject.objects.bulk_create(rejects, batch_size=1000)
    chunk.delete()
    malformed, well_formed = len(read.malformed), len(read.lines)
    is_last = Q(chunks=F("chunks_done") + 1)
    done, running = Value(LeadImportStatus.DONE), Value(LeadImportStatus.RUNNING)
    # F(): two workers finishing chunks of one import at once must both count. The worker that
    # counts the last chunk closes the import: the update waits for the row lock of any other
    # chunk's update and then sees its count (PostgreSQL re-reads a row it waited for).
    LeadImport.objects.filter(pk=lead_import.pk).update(
        status=Case(When(is_last, then=done), default=running),
        finished_at=Case(When(is_last, then=Value(timezone.now())), default=F("finished_at")),
        chunks_done=F("chunks_done") + 1,
        processed=F("processed") + malformed + well_formed,
        created_leads=F("created_leads") + len(result.created),
        rejected=F("rejected") + malformed + len(result.rejected),
        duplicates=F("duplicates") + len(result.duplicates),
    )


def _field(columns: list[str], fields: list[str], name: str) -> str:
    at = columns.index(name) if name in columns else len(fields)
    return fields[at].strip() if at < len(fields) else ""


def _reject(lead_import: LeadImport, lines: list[int], item: dict[str, Any], reason: str) -> LeadImportReject:
    number = str(item.get("phone_number") or "")[:64]
    return LeadImportReject(lead_import=lead_import, row=lines[item["index"]], number=number, reason=reason)


def _column_kinds(columns: list[str]) -> list[str]:
    """What each column is — phone_number, name, source, priority, header or "" (ignored) — worked
    out once per chunk rather than for every field of every row."""
    kinds = []
    for column in columns:
        if column == "phone_number" or column in _TEXT_LIMITS or column == "priority":
            kinds.append(column)
        else:
            kinds.append("header" if HEADER_NAME.match(column) else "")
    return kinds


def _lead_row(columns: list[str], kinds: list[str], fields: list[str]) -> tuple[LeadRow | None, str]:
    """A LeadRow from one record, or (None, reason) when its shape is wrong."""
    values: dict[str, Any] = {"phone_number": ""}
    context: dict[str, str] = {}
    for column, kind, value in zip(columns, kinds, fields, strict=False):
        value = value.strip()
        if kind == "phone_number":
            values[kind] = value[:64]  # longer is no number: import_leads calls it invalid_number
        elif kind == "header":
            if value:
                # isascii() and isprintable(): no control character, without the regex's cost.
                has_control = not (value.isascii() and value.isprintable()) and _CONTROL.search(value)
                if len(value) > MAX_CONTEXT_VALUE or has_control:
                    return None, "invalid_context"
                context[column] = value
        elif kind == "priority":
            if value:
                # isascii: "²" is a digit to isdigit() and not to int().
                if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 1000:
                    return None, "invalid_priority"
                values["priority"] = int(value)
        elif kind:
            if len(value) > _TEXT_LIMITS[kind]:
                return None, f"{kind}_too_long"
            values[kind] = value
    return LeadRow(**values, context=context), ""


# A spreadsheet runs a cell that starts with = + - @ as a formula, and these came from a file.
_PHONE_LIKE = re.compile(r"^[+-]?[0-9 ().-]*$")


def _safe_cell(value: str) -> str:
    return value if _PHONE_LIKE.match(value) or value[:1] not in "=+-@\t\r" else f"'{value}"


def rejects_csv(lead_import: LeadImport) -> Iterator[str]:
    """The rejected rows as CSV text, a few thousand rows at a time (for a streamed download)."""
    buffer, writer = _new_chunk_buffer()
    writer.writerow(["Row", "Number", "Reason"])
    rows = lead_import.rejects.order_by("row").values_list("row", "number", "reason")
    for count, (row, number, reason) in enumerate(rows.iterator(chunk_size=2000), start=1):
        writer.writerow([row, _safe_cell(number), reason])
        if count % 2000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# --- do-not-call files (small: imported in the request) -----------------------------------


@dataclass(frozen=True, slots=True)
class DoNotCallImportResult:
    added: int
    already_listed: int
    invalid: list[tuple[int, str]]  # (row, number as written)


@transaction.atomic
def import_do_not_call(
    *, center: ContactCenter, campaign: Campaign | None, upload: IO[bytes], by: Actor
) -> DoNotCallImportResult:
    """Adds every valid number of the file (column Number, optional Reason) to the list.

    Leads waiting to be dialled with those numbers are retired, as `add_do_not_call` does.
    """
    if campaign is not None and campaign.contact_center_id != center.pk:
        raise DomainError("invalid_choice", "The campaign must belong to this contact center.")
    columns, records = _records(upload)
    lowered = [column.lower() for column in columns]
    if "number" not in lowered:
        raise _refused("The first row must name the columns, one of them Number (and optionally Reason).")
    number_at = lowered.index("number")
    reason_at = lowered.index("reason") if "reason" in lowered else None
    region = dialer_policy(center).default_region
    wanted: dict[str, str] = {}
    invalid: list[tuple[int, str]] = []
    for count, (line, fields) in enumerate(records, start=1):
        if count > MAX_DNC_ROWS:
            raise _refused(f"At most {MAX_DNC_ROWS:,} numbers per file; split it.")
        text = fields[number_at].strip() if number_at < len(fields) else ""
        _, parsed = classify_number(text, region=region)
        if parsed is None:
            invalid.append((line, text[:64]))
            continue
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        reason = fields[reason_at].strip() if reason_at is not None and reason_at < len(fields) else ""
        wanted.setdefault(e164, reason[:255])
    phones = list(wanted)
    listed: set[str] = set()
    for start in range(0, len(phones), 1000):
        listed.update(
            DoNotCall.objects.filter(
                contact_center=center, campaign=campaign, phone__in=phones[start : start + 1000]
            ).values_list("phone", flat=True)
        )
    new = [phone for phone in phones if phone not in listed]
    added_by = by if hasattr(by, "email") else None
    DoNotCall.objects.bulk_create(
        [
            DoNotCall(
                contact_center=center, campaign=campaign, phone=phone, reason=wanted[phone], added_by=added_by
            )
            for phone in new
        ],
        batch_size=1000,
    )
    for start in range(0, len(new), 1000):
        leads = Lead.objects.filter(
            contact_center=center,
            phone__in=new[start : start + 1000],
            status__in=[LeadStatus.NEW, LeadStatus.RETRY],
        )
        if campaign is not None:
            leads = leads.filter(campaign=campaign)
        leads.update(status=LeadStatus.DNC)
    AuditEvent.record(
        center=center,
        by=by,
        action="dnc.imported",
        target=campaign or center,
        changes={"added": len(new), "already_listed": len(listed), "invalid": len(invalid)},
    )
    return DoNotCallImportResult(added=len(new), already_listed=len(listed), invalid=invalid)
