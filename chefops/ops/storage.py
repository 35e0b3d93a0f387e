"""Where archives and backups live: two named Django storages, "archives" and "backups".

Each is configured by one URL (README "Archive and backup storage"):

- empty (the default): the local directory ARCHIVE_DIR / BACKUP_DIR, read when used, so
  ``make run``, development and the tests keep their folders;
- ``file:///absolute/path``: another local directory;
- ``s3://bucket[/prefix]?endpoint_url=…&region=…&addressing_style=path|virtual``: an
  S3-compatible bucket through django-storages (boto3). Credentials come from the standard
  AWS chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` in the environment, a profile,
  an instance role), or from the ``access_key_id`` / ``secret_access_key`` parameters.

The STORAGES entries are built by chefops.ops.storage_config (settings time); the helpers here work
on any Django storage, local or not.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages


class SettingDirStorage(FileSystemStorage):
    """A FileSystemStorage rooted at the directory a setting names (ARCHIVE_DIR, BACKUP_DIR),
    read at every use: a changed setting (tests, the benchmarks) takes effect at once."""

    def __init__(self, *, setting: str, **kwargs: Any) -> None:
        self._dir_setting = setting
        super().__init__(**kwargs)

    @property
    def base_location(self) -> str:
        return str(getattr(settings, self._dir_setting))

    @property
    def location(self) -> str:
        return os.path.abspath(self.base_location)


def archives() -> Storage:
    return storages["archives"]


def backups() -> Storage:
    return storages["backups"]


def local_root(storage: Storage) -> Path | None:
    """The directory of a local storage, None for an object storage."""
    if isinstance(storage, FileSystemStorage):
        return Path(storage.location)
    return None


def describe(storage: Storage) -> str:
    """Where the storage puts things, for messages: a directory or s3://bucket/prefix."""
    root = local_root(storage)
    if root is not None:
        return str(root)
    bucket = getattr(storage, "bucket_name", "?")
    prefix = str(getattr(storage, "location", "") or "").strip("/")
    return f"s3://{bucket}/{prefix}".rstrip("/")


def location_of(storage: Storage, name: str) -> str:
    """The full location of one stored file, as the operator would name it back."""
    return f"{describe(storage)}/{name}"


def name_in(storage: Storage, given: str) -> str:
    """A name inside the storage from either the name itself or its full location."""
    prefix = describe(storage) + "/"
    return given[len(prefix) :] if given.startswith(prefix) else given


@dataclass(frozen=True)
class StoredFile:
    name: str  # inside the storage, "/"-separated
    size: int
    modified: datetime


def list_files(storage: Storage, prefix: str = "") -> list[StoredFile]:
    """Every file under ``prefix`` (recursive), sorted by name; an object storage is listed
    with one paginated request per 1,000 objects, sizes and times included."""
    root = local_root(storage)
    found: list[StoredFile] = []
    if root is not None:
        base = root / prefix if prefix else root
        if not base.is_dir():
            return found
        for path in base.rglob("*"):
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed meanwhile
                continue
            if path.is_file():
                found.append(
                    StoredFile(
                        path.relative_to(root).as_posix(),
                        stat.st_size,
                        datetime.fromtimestamp(stat.st_mtime, tz=UTC),
                    )
                )
    else:
        location = str(getattr(storage, "location", "") or "").strip("/")
        key_prefix = "/".join(p for p in (location, prefix.strip("/")) if p)
        if key_prefix:
            key_prefix += "/"
        bucket: Any = storage.bucket  # type: ignore[attr-defined]
        for obj in bucket.objects.filter(Prefix=key_prefix):
            name = obj.key[len(location) + 1 :] if location else obj.key
            if name and not name.endswith("/"):
                found.append(StoredFile(name, int(obj.size), obj.last_modified))
    found.sort(key=lambda f: f.name)
    return found


def download(storage: Storage, name: str, target: IO[bytes]) -> None:
    """Copy one stored file into ``target``, streaming (never the whole file in memory)."""
    with storage.open(name, "rb") as source:
        s3_object = getattr(source, "obj", None)
        if s3_object is not None:
            # in parts, straight into the target, as the storage's transfer settings allow
            s3_object.download_fileobj(target, Config=getattr(storage, "transfer_config", None))
        else:
            shutil.copyfileobj(source, target, 1024 * 1024)


@contextmanager
def local_file(storage: Storage, name: str) -> Iterator[Path]:
    """A path on disk holding the stored file: the file itself on a local storage, else a
    temporary download removed afterwards. FileNotFoundError when it does not exist."""
    root = local_root(storage)
    if root is not None:
        path = Path(storage.path(name))
        if not path.is_file():
            raise FileNotFoundError(name)
        yield path
        return
    if not storage.exists(name):
        raise FileNotFoundError(name)
    suffix = "-" + Path(name).name
    with tempfile.NamedTemporaryFile(prefix="chefops-", suffix=suffix) as tmp:
        download(storage, name, tmp)
        tmp.flush()
        yield Path(tmp.name)
