"""Retention purges (SPEC §5.5): deleted companies, processed outbox events, old archives.

Archives are gzip-compressed JSON lines in the "archives" Django storage (ARCHIVE_STORAGE_URL:
an S3-compatible bucket, or by default the local ARCHIVE_DIR; chefops/ops/storage.py), one object
per row in the shape of Django's "python" serializer:
``{"model": "app.model", "pk": ..., "fields": {...}}``.

- ``companies/<UTC date>/<company id>.jsonl.gz``: one purged company with every row that its
  removal deletes (profiles, office days, users with their sessions and tokens, admin log
  entries, contracts on either side with their weekdays and service days). A contract between
  the purged company and a company that is NOT deleted is archived and removed too: it points
  at the purged company with a PROTECT foreign key, so it cannot outlive it. The other party
  loses that contract's history from the live database; ``manage.py archive restore`` brings
  it back. A contract between two deleted companies goes into the archive of whichever
  company is purged first (restore the other company's archive before that one).
- ``outbox/<UTC date>.jsonl.gz``: processed outbox events, one gzip member appended per batch
  (``gzip``/``zcat`` read concatenated members as one stream), on a local storage.
  An object storage cannot append: there each batch is its own object,
  ``outbox/<UTC date>/<run start, UTC>-<run tag>-<batch number>.jsonl.gz``.

Every purge commits per batch (companies: one company per transaction), so no lock is held
longer than one batch.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from graphlib import TopologicalSorter
from pathlib import Path, PurePosixPath
from time import monotonic
from typing import Any

from django.apps import apps
from django.contrib.admin.utils import NestedObjects
from django.core import serializers
from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from chefops.ops import storage
from companies.models import Company
from companies.services import auth_tokens_purge_expired
from contracts.models import Contract, ContractWeekday
from outbox.models import EventStatus, OutboxEvent, ProcessedEvent
from servicedays.models import ServiceDay
from webhooks.services import webhook_deliveries_purge

logger = logging.getLogger(__name__)

COMPANY_GRACE_DAYS = 30
OUTBOX_KEEP_DAYS = 30
ARCHIVE_KEEP_DAYS = 365
DEFAULT_BATCH_SIZE = 5000

COMPANIES_PREFIX = "companies"
OUTBOX_PREFIX = "outbox"
_DATED_NAME = re.compile(
    r"^(?:companies/(\d{4}-\d{2}-\d{2})/[^/]+|outbox/(\d{4}-\d{2}-\d{2})(?:/[^/]+)?)\.jsonl\.gz$"
)


def archive_storage() -> Storage:
    return storage.archives()


class ArchiveJSONEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder cuts datetimes to milliseconds; an archive must restore them exactly."""

    def default(self, o: Any) -> Any:
        if isinstance(o, datetime | time):
            return o.isoformat()
        return super().default(o)


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, cls=ArchiveJSONEncoder, separators=(",", ":")).encode() + b"\n"


# --- deleted companies ----------------------------------------------------------------------


@dataclass
class CompanyPurgeResult:
    companies: int = 0
    rows: int = 0
    files: list[str] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        verb = "would archive and delete" if self.dry_run else "archived and deleted"
        return f"purge_deleted_companies: {verb} {self.companies} company(ies), {self.rows} row(s)"


def purgeable_companies(*, now: datetime | None = None) -> models.QuerySet[Company]:
    """Deleted companies past their 30-day undelete window."""
    cutoff = (now or timezone.now()) - timedelta(days=COMPANY_GRACE_DAYS)
    return Company.objects.filter(deleted_at__isnull=False, deleted_at__lt=cutoff).order_by(
        "deleted_at", "id"
    )


def _collect_company_rows(company: Company, using: str) -> list[models.Model]:
    """Every row that deleting the company (and the contracts naming it) removes."""
    contracts = list(
        Contract.objects.using(using).filter(
            Q(catering_company=company) | Q(client_company=company)
        )
    )
    collector = NestedObjects(using=using)
    collector.collect(contracts)
    # Contracts PROTECT the company: NestedObjects records them as protected instead of
    # raising, after collecting every cascade. They are deleted first, so that is fine.
    collector.collect([company])
    rows: list[models.Model] = []
    for model, instances in collector.data.items():
        if model._meta.auto_created:
            continue  # m2m through rows travel inside their owner's "fields"
        rows.extend(sorted(instances, key=lambda o: str(o.pk)))
    return rows


def _serialize_rows(rows: Iterable[models.Model]) -> Iterator[bytes]:
    for row in rows:
        (obj,) = serializers.serialize("python", [row])
        yield _dumps(obj)


def company_archive_name(company_id: Any, day: date) -> str:
    return f"{COMPANIES_PREFIX}/{day.isoformat()}/{company_id}.jsonl.gz"


def _save_bytes(target: Storage, name: str, data: bytes) -> str:
    if target.exists(name):
        target.delete(name)  # a re-run after a failed delete rewrites the same company
    return target.save(name, ContentFile(data))


def deleted_companies_purge(
    *, now: datetime | None = None, dry_run: bool = False, batch_size: int = DEFAULT_BATCH_SIZE
) -> CompanyPurgeResult:
    """Archive and remove companies deleted more than 30 days ago, one company per transaction.

    ``batch_size`` bounds how many companies one run handles.
    """
    now = now or timezone.now()
    result = CompanyPurgeResult(dry_run=dry_run)
    archives = archive_storage()
    ids = list(purgeable_companies(now=now).values_list("pk", flat=True)[:batch_size])
    for company_id in ids:
        with transaction.atomic():
            company = (
                Company.objects.select_for_update()
                .filter(pk=company_id, deleted_at__isnull=False)
                .first()
            )
            if company is None:
                continue  # undeleted or purged meanwhile
            rows = _collect_company_rows(company, DEFAULT_DB_ALIAS)
            result.companies += 1
            result.rows += len(rows)
            if dry_run:
                continue
            buffer = io.BytesIO()
            with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
                for line in _serialize_rows(rows):
                    gz.write(line)
            # The file is written before the rows go; if the delete fails the transaction
            # rolls back and the next run rewrites the same archive.
            name = _save_bytes(
                archives, company_archive_name(company.pk, now.date()), buffer.getvalue()
            )
            contract_ids = [r.pk for r in rows if isinstance(r, Contract)]
            ServiceDay.objects.filter(contract_id__in=contract_ids).delete()
            ContractWeekday.objects.filter(contract_id__in=contract_ids).delete()
            Contract.objects.filter(pk__in=contract_ids).delete()
            company.delete()
            result.files.append(name)
            logger.info(
                "retention: archived company %s to %s (%d rows)", company.pk, name, len(rows)
            )
    return result


# --- archive restore / list -----------------------------------------------------------------


def read_archive(path_or_name: str) -> list[dict[str, Any]]:
    """Read an archive given as a path on disk, or as a name in the archive storage (its full
    location, as ``archive list`` prints it, works too)."""
    path = Path(path_or_name)
    if path.is_file():
        with gzip.open(path, "rb") as gz:
            return [json.loads(line) for line in gz if line.strip()]
    archives = archive_storage()
    name = storage.name_in(archives, path_or_name)
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or not archives.exists(name):
        raise FileNotFoundError(path_or_name)
    with archives.open(name, "rb") as fh, gzip.GzipFile(fileobj=fh, mode="rb") as gz:
        return [json.loads(line) for line in gz if line.strip()]


class ArchiveConflict(Exception):
    pass


def _insert_order(model_labels: Iterable[str]) -> list[type[models.Model]]:
    present = {apps.get_model(label) for label in model_labels}
    graph: dict[type[models.Model], set[type[models.Model]]] = {}
    for model in present:
        deps = {
            f.related_model
            for f in model._meta.concrete_fields
            if f.is_relation and f.related_model in present and f.related_model is not model
        }
        graph[model] = deps
    return list(TopologicalSorter(graph).static_order())


def archive_restore(path_or_name: str) -> dict[str, int]:
    """Load an archive back in one transaction; refuses if any of its rows already exists."""
    objects = read_archive(path_or_name)
    by_label: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_label.setdefault(obj["model"].lower(), []).append(obj)
    order = _insert_order(by_label)
    counts: dict[str, int] = {}
    with transaction.atomic():
        for model in order:
            label = model._meta.label_lower
            pks = [model._meta.pk.to_python(o["pk"]) for o in by_label[label]]
            if model._default_manager.filter(pk__in=pks).exists():
                raise ArchiveConflict(f"{label}: some rows of this archive already exist")
        for model in order:
            label = model._meta.label_lower
            for deserialized in serializers.deserialize("python", by_label[label]):
                deserialized.save()
            counts[label] = len(by_label[label])
    return counts


@dataclass(frozen=True)
class ArchiveFile:
    name: str
    day: date
    size: int


def archive_files() -> list[ArchiveFile]:
    """Archives in the archive storage, by name (one listing, sizes included)."""
    found: list[ArchiveFile] = []
    for prefix in (COMPANIES_PREFIX, OUTBOX_PREFIX):
        for item in storage.list_files(archive_storage(), prefix):
            match = _DATED_NAME.match(item.name)
            if not match:
                continue
            day = date.fromisoformat(match.group(1) or match.group(2))
            found.append(ArchiveFile(name=item.name, day=day, size=item.size))
    return found


@dataclass
class ArchivePurgeResult:
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    dry_run: bool = False

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"purge_archives: {verb} {len(self.files)} archive(s) older than "
            f"{ARCHIVE_KEEP_DAYS} days, {self.bytes} byte(s)"
        )


def archives_purge(
    *, now: datetime | None = None, dry_run: bool = False, batch_size: int = DEFAULT_BATCH_SIZE
) -> ArchivePurgeResult:
    """Hard-delete archives whose UTC date (in their name) is more than a year old."""
    cutoff = (now or timezone.now()).date() - timedelta(days=ARCHIVE_KEEP_DAYS)
    result = ArchivePurgeResult(dry_run=dry_run)
    archives = archive_storage()
    for item in archive_files():
        if item.day >= cutoff:
            continue
        if len(result.files) >= batch_size:
            break
        if not dry_run:
            archives.delete(item.name)
        result.files.append(item.name)
        result.bytes += item.size
    return result


# --- outbox events --------------------------------------------------------------------------


@dataclass
class OutboxPurgeResult:
    events: int = 0
    ledger_rows: int = 0
    batches: int = 0
    max_batch_seconds: float = 0.0
    archive: str | None = None
    dry_run: bool = False

    def summary(self) -> str:
        verb = "would archive and delete" if self.dry_run else "archived and deleted"
        text = (
            f"purge_outbox_events: {verb} {self.events} processed event(s), "
            f"{'would delete' if self.dry_run else 'deleted'} {self.ledger_rows} ledger row(s)"
        )
        if not self.dry_run:
            text += f" in {self.batches} batch(es), longest {self.max_batch_seconds:.3f}s"
        return text


_OUTBOX_FIELDS = [f.attname for f in OutboxEvent._meta.concrete_fields if f.attname != "id"]


def outbox_archive_name(day: date) -> str:
    return f"{OUTBOX_PREFIX}/{day.isoformat()}.jsonl.gz"


def _write_batch(
    archives: Storage, name: str, batch: int, started: datetime, run_tag: str, payload: bytes
) -> str:
    """Append one gzip member to ``name`` on a local storage; on an object storage (no
    append) save the batch as its own object beside it. Returns what was written."""
    member = gzip.compress(payload, compresslevel=1, mtime=0)
    root = storage.local_root(archives)
    if root is not None:
        path = Path(archives.path(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as fh:
            fh.write(member)
            fh.flush()
        return name
    stem = name.removesuffix(".jsonl.gz")
    # The run's start and a random tag: two runs never share a name (even under a frozen clock).
    batch_name = f"{stem}/{started.strftime('%H%M%S%fZ')}-{run_tag}-{batch:05d}.jsonl.gz"
    return _save_bytes(archives, batch_name, member)


_Page = tuple[list[Any], tuple[datetime, Any] | None, list[bytes]]


def _outbox_page_orm(
    old: models.QuerySet[OutboxEvent], *, after: tuple[datetime, Any] | None, limit: int
) -> _Page:
    page = old
    if after is not None:
        page = page.filter(Q(processed_at__gt=after[0]) | Q(processed_at=after[0], id__gt=after[1]))
    rows = list(page.order_by("processed_at", "id").values("id", *_OUTBOX_FIELDS)[:limit])
    if not rows:
        return [], after, []
    ids = [row["id"] for row in rows]
    last = (rows[-1]["processed_at"], ids[-1])
    lines = [
        _dumps({"model": "outbox.outboxevent", "pk": row.pop("id"), "fields": row}) for row in rows
    ]
    return ids, last, lines


def _outbox_page_pg(*, cutoff: datetime, after: tuple[datetime, Any] | None, limit: int) -> _Page:
    """Same page as the ORM path, with PostgreSQL building each JSON line: decoding and
    re-encoding a million payloads in Python is most of the purge time otherwise. Timestamps
    come out as ISO 8601 with offset and microseconds, which the deserializer reads back."""
    table = connection.ops.quote_name(OutboxEvent._meta.db_table)
    keyset = "AND (processed_at, id) > (%s, %s)" if after is not None else ""
    sql = (
        "SELECT id, processed_at, json_build_object("  # noqa: S608 - table name from _meta
        "'model', 'outbox.outboxevent', 'pk', id, 'fields', to_jsonb(e) - 'id')::text "
        f"FROM {table} e WHERE status = %s AND processed_at < %s {keyset} "
        "ORDER BY processed_at, id LIMIT %s"
    )
    params: list[Any] = [EventStatus.PROCESSED, cutoff, *(after or ()), limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        return [], after, []
    return [r[0] for r in rows], (rows[-1][1], rows[-1][0]), [r[2].encode() + b"\n" for r in rows]


def outbox_events_purge(
    *, now: datetime | None = None, dry_run: bool = False, batch_size: int = DEFAULT_BATCH_SIZE
) -> OutboxPurgeResult:
    """Archive then delete PROCESSED events processed more than 30 days ago; DEAD ones stay.

    Keyset pagination on (processed_at, id) so each batch starts after the last one without
    rescanning the dead index entries the previous deletes left behind; each batch is one
    short transaction (DELETE ... WHERE id IN (batch)).
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=OUTBOX_KEEP_DAYS)
    result = OutboxPurgeResult(dry_run=dry_run)
    old = OutboxEvent.objects.filter(status=EventStatus.PROCESSED, processed_at__lt=cutoff)
    ledger = ProcessedEvent.objects.filter(processed_at__lt=cutoff)
    if dry_run:
        result.events = old.count()
        result.ledger_rows = ledger.count()
        return result
    archives = archive_storage()
    name = outbox_archive_name(now.date())
    run_started, run_tag = timezone.now(), uuid.uuid4().hex[:8]
    last: tuple[datetime, Any] | None = None
    while True:
        started = monotonic()
        if connection.vendor == "postgresql":
            ids, last, lines = _outbox_page_pg(cutoff=cutoff, after=last, limit=batch_size)
        else:
            ids, last, lines = _outbox_page_orm(old, after=last, limit=batch_size)
        if not ids:
            break
        with transaction.atomic():
            # Written before the delete commits: a crash leaves a duplicate in the log,
            # never a deleted event missing from it.
            written = _write_batch(
                archives, name, result.batches + 1, run_started, run_tag, b"".join(lines)
            )
            OutboxEvent.objects.filter(pk__in=ids, status=EventStatus.PROCESSED)._raw_delete(
                OutboxEvent.objects.db
            )
        result.events += len(ids)
        result.batches += 1
        result.max_batch_seconds = max(result.max_batch_seconds, monotonic() - started)
        result.archive = name if written == name else name.removesuffix(".jsonl.gz") + "/"
    while True:
        ledger_ids = list(ledger.order_by().values_list("pk", flat=True)[:batch_size])
        if not ledger_ids:
            break
        result.ledger_rows += ProcessedEvent.objects.filter(pk__in=ledger_ids)._raw_delete(
            ProcessedEvent.objects.db
        )
    return result


# --- expired tokens and the whole daily run -------------------------------------------------


def expired_tokens_purge(
    *, now: datetime | None = None, dry_run: bool = False, batch_size: int = DEFAULT_BATCH_SIZE
) -> dict[str, int]:
    from companies.models import AuthSession, OneTimeToken, RefreshToken

    now = now or timezone.now()
    if dry_run:
        return {
            "sessions": AuthSession.objects.filter(expires_at__lte=now).count(),
            "refresh_tokens": RefreshToken.objects.filter(expires_at__lte=now).count(),
            "one_time_tokens": OneTimeToken.objects.filter(expires_at__lte=now).count(),
        }
    return auth_tokens_purge_expired(now=now, batch_size=batch_size)


def retention_purge_all(
    *, dry_run: bool = False, batch_size: int = DEFAULT_BATCH_SIZE, now: datetime | None = None
) -> str:
    """Every retention step in order; returns the one-line summary."""
    now = now or timezone.now()
    companies = deleted_companies_purge(now=now, dry_run=dry_run, batch_size=batch_size)
    outbox = outbox_events_purge(now=now, dry_run=dry_run, batch_size=batch_size)
    tokens = expired_tokens_purge(now=now, dry_run=dry_run, batch_size=batch_size)
    archives = archives_purge(now=now, dry_run=dry_run, batch_size=batch_size)
    webhooks = webhook_deliveries_purge(now=now, dry_run=dry_run, batch_size=batch_size)
    prefix = "retention_purge (dry run): would remove" if dry_run else "retention_purge: removed"
    return (
        f"{prefix} {companies.companies} company(ies) ({companies.rows} rows), "
        f"{outbox.events} outbox event(s), {outbox.ledger_rows} ledger row(s), "
        f"{sum(tokens.values())} expired token/session row(s), {len(archives.files)} archive(s), "
        f"{webhooks} webhook delivery(ies)"
    )
