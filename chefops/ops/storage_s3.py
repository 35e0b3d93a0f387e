"""The S3 backend of the "archives" and "backups" storages (ARCHIVE_STORAGE_URL /
BACKUP_STORAGE_URL = s3://…): django-storages' S3Storage, plus one thing for big files.

Given a file object, boto3 reads every multipart part into memory as it queues it: a 1 GB dump
would sit whole in memory. Content that lives in a file on disk says so the way Django's
uploads do (``temporary_file_path()``), and is uploaded from that path instead, in parts read
as they are sent. Its own module: boto3 is imported only when a bucket is used.
"""

from __future__ import annotations

from typing import Any

from boto3.s3.transfer import TransferConfig
from storages.backends import s3
from storages.utils import clean_name

MULTIPART_CHUNK_BYTES = 8 * 1024 * 1024


class S3Storage(s3.S3Storage):
    def __init__(self, **settings: Any) -> None:
        # Parts of 8 MiB, two in flight, few chunks queued for the disk: boto3's defaults (ten
        # parts in flight, 100 chunks queued) cost ~100 MiB beside the web workers of a 512 MB
        # container.
        settings.setdefault(
            "transfer_config",
            TransferConfig(
                multipart_threshold=MULTIPART_CHUNK_BYTES,
                multipart_chunksize=MULTIPART_CHUNK_BYTES,
                max_concurrency=2,
                max_io_queue=16,  # downloaded chunks (256 KiB) waiting to be written
            ),
        )
        super().__init__(**settings)

    def _save(self, name: str, content: Any) -> str:
        temporary_file_path = getattr(content, "temporary_file_path", None)
        if temporary_file_path is None:
            return str(super()._save(name, content))
        cleaned = clean_name(name)
        key = self._normalize_name(cleaned)
        params = self._get_write_parameters(key, content)
        self.bucket.Object(key).upload_file(
            temporary_file_path(), ExtraArgs=params, Config=self.transfer_config
        )
        return str(cleaned)
