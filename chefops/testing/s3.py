"""A real S3-compatible server for the tests: moto's standalone server, in a thread of the
test process, on a free port of 127.0.0.1. boto3 talks to it over HTTP like to any bucket;
nothing is patched. Each test takes its own bucket, so runs and tests share nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

READY_TIMEOUT_SECONDS = 60
REGION = "us-east-1"
# moto accepts any credentials; explicit ones keep the developer's own AWS setup out of it.
ACCESS_KEY = "chefops-test"
SECRET_KEY = "chefops-test-secret"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self) -> str:
        name = f"chefops-test-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def url(self, bucket: str, prefix: str = "") -> str:
        """An ARCHIVE_STORAGE_URL / BACKUP_STORAGE_URL for ``bucket``/``prefix``."""
        return (
            f"s3://{bucket}/{prefix}?endpoint_url={self.endpoint_url}&region={REGION}"
            f"&addressing_style=path&access_key_id={ACCESS_KEY}&secret_access_key={SECRET_KEY}"
        )

    def keys(self, bucket: str, prefix: str = "") -> dict[str, int]:
        """Every object under ``prefix`` with its size, straight from the server."""
        found: dict[str, int] = {}
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        for page in pages:
            for entry in page.get("Contents", ()):
                found[entry["Key"]] = int(entry["Size"])
        return found


@contextmanager
def running_s3_server() -> Iterator[S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()  # returns once the socket listens
    try:
        host, port = server.get_host_and_port()
        s3 = S3Server(f"http://{host}:{port}")
        _wait_until_answering(s3)
        yield s3
    finally:
        server.stop()


def _wait_until_answering(s3: S3Server) -> None:
    """Poll until the server answers an S3 request (no fixed sleep: each failed attempt is a
    refused or timed-out connection, then the next one)."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            s3.client().list_buckets()
            return
        except Exception as exc:  # noqa: BLE001 - connection refused/reset while starting
            error = exc
    raise RuntimeError(f"the S3 test server at {s3.endpoint_url} never answered: {error}")
