"""The project's password hasher: Argon2id sized for a 512 MB container.

Memory: each Argon2 computation needs a 19 MiB work area. glibc serves it from the arena of
the calling thread and keeps the freed block for reuse, so with gthread workers every request
thread that ever hashed would pin its own 19 MiB (4 threads = +76 MiB per worker, measured).
Hashes therefore run on a small per-process pool of dedicated threads
(``ARGON2_THREADS``, default 2): memory stays bounded at ``ARGON2_THREADS x 19 MiB`` per
process and is reused without page faults, while two hashes at a time per worker keep both
cores busy (several workers run). The hash itself releases the GIL, so the request thread
merely waits for its result.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.contrib.auth.hashers import Argon2PasswordHasher

T = TypeVar("T")

ARGON2_THREADS = max(1, int(os.environ.get("ARGON2_THREADS", "2")))

_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None
_pool_lock = threading.Lock()


def _hash_pool() -> ThreadPoolExecutor:
    """The pool of this process (threads do not survive gunicorn's fork: made lazily)."""
    global _pool, _pool_pid
    pid = os.getpid()
    if _pool is None or _pool_pid != pid:
        with _pool_lock:
            if _pool is None or _pool_pid != pid:
                _pool = ThreadPoolExecutor(max_workers=ARGON2_THREADS, thread_name_prefix="argon2")
                _pool_pid = pid
    return _pool


def run_on_hash_pool(func: Callable[..., T], *args: Any) -> T:
    if threading.current_thread().name.startswith("argon2"):
        return func(*args)  # already on the pool: never wait on ourselves
    return _hash_pool().submit(func, *args).result()


class SizedArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id, ~19 MiB per hash instead of Django's ~100 MiB (OWASP minimum: m=19 MiB,
    t=2, p=1). Hashes made with other parameters are upgraded on the next successful login
    (``must_update``). Hashing runs on the bounded pool described above."""

    algorithm = "argon2"
    time_cost = 2
    memory_cost = 19 * 1024
    parallelism = 1

    def encode(self, password: str, salt: str) -> Any:
        return run_on_hash_pool(super().encode, password, salt)

    def verify(self, password: str, encoded: str) -> bool:
        return bool(run_on_hash_pool(super().verify, password, encoded))
