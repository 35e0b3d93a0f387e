"""The web process's gunicorn worker: gthread, with keep-alive connections balanced over the
workers, and request bodies settled before the response (README "Processes").

gunicorn 27's ``ThreadWorker`` accepts from the shared listening socket while it holds fewer than
``worker_connections`` connections, and keeps each accepted connection (keep-alive) until the
client or the keep-alive timeout closes it. What went wrong with many keep-alive clients:

* **Spread or starvation.** The worker that wins the accept race takes most of a burst of new
  connections (12 of 16 seen), and one process's GIL then serves them all. A low cap per worker
  (threads + 2) forced the spread, but capped the whole server at 18 connections: the rest
  waited in the listen backlog while the held ones stayed busy, and timed out (issue #13). Here
  the cap is high, and the spread comes from :class:`ConnectionTable`: a worker accepts only
  while it holds no more connections than the least loaded of its siblings, so every worker
  fills at the same pace whatever the number of clients; and a worker holding more than
  ``SHED_MARGIN`` above a sibling (its clients came over when a sibling restarted) answers with
  ``Connection: close`` until the spread is back.
* **Restarts together.** Balanced workers reach ``max_requests`` together; restarted together,
  nobody answered for seconds. Here one worker restarts at a time.
* **A thread per silent connection.** gunicorn hands a new connection to a thread that waits up
  to 5 s for its first bytes; four silent connections (a TCP probe, a preconnecting browser)
  idle all threads of a worker. Here new connections wait on the poller, like kept-alive ones.
  And closing a connection (half-close, then wait for the client's end) happens in the request's
  thread, not in the main loop, which a client slow to close used to stall.

And a body the application did not read (a POST to a route that reads none, a 404) used to be
drained by gunicorn *after* a response that announced keep-alive: at most 64 KiB, then the
connection was closed under the client's next request. Here the unread body is read before the
response starts, up to the largest body the application accepts
(``DATA_UPLOAD_MAX_MEMORY_SIZE``); anything larger (chefops/wsgi.py answers it 413) is answered
with ``Connection: close`` and read off the socket after the response, so the client, still
sending, is not reset before it reads the answer.

This overrides methods of gunicorn's worker that are not a public API (``accept``,
``handle_request``, ``_keepalive_after``, ``wait_for_and_dispatch_events``) and, in a worker that
serves Django, replaces ``gunicorn.util.write_error`` (its HTML answer to a request it cannot
parse) by the API's error shape: gunicorn is pinned in requirements.txt, and
chefops/tests/test_serving.py must pass before it is upgraded.

gunicorn.conf.py loads this module in the master by its file path: it imports the standard
library and gunicorn only. Importing it as ``chefops.serving`` there would run the chefops package
(Celery, the Django settings) in the master, whose modules every worker would then inherit
unchanged across a SIGHUP reload.
"""

from __future__ import annotations

import contextlib
import errno
import json
import mmap
import multiprocessing
import os
import selectors
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from gunicorn import util as gunicorn_util
from gunicorn.http.body import LengthReader
from gunicorn.workers.gthread import DEFAULT_WORKER_DATA_TIMEOUT, TConn, ThreadWorker

# Workers whose connection counts the table holds: WEB_CONCURRENCY, with room for recycled
# workers that overlap their successors and for a TTIN or two.
TABLE_SLOTS = 64
# A worker's entry counts while its main loop wrote it this recently. The loop runs at least
# once a second (gunicorn's poll timeout); its thread may wait a while for the GIL under load.
# An entry older than this is a worker that died without clearing it, or that is stuck.
STALE_ENTRY_SECONDS = 5.0
# A worker refused new connections because a sibling holds fewer: how soon it looks again (it
# also looks whenever one of its own connections has an event).
HELD_BACK_RECHECK_SECONDS = 0.05
# A worker holding more than this many connections above its least loaded sibling answers with
# "Connection: close" until it is back within the margin: the client reconnects, and the accept
# balancing hands the new connection to the sibling. This re-spreads kept-alive clients after a
# worker was recycled (its clients reconnected to the others, and its successor starts empty).
# Balanced accepts keep the counts within 1, so a steady spread sheds nothing.
SHED_MARGIN = 2
# A worker due for recycling (max_requests) while a sibling is missing from the table (stopping,
# or its successor still booting) serves this many more requests before it asks again (a lock
# and a scan of the table): one worker restarts at a time. Balanced workers reach max_requests
# together, and restarting them together left nobody to answer (health probes failed).
# Deferral ends at twice max_requests.
RECYCLE_DEFER_REQUESTS = 1
# Out of file descriptors while accepting: leave the connection to a sibling for this long.
ACCEPT_PAUSE_SECONDS = 0.5
# Closing a connection: after the response, the worker half-closes and waits for the client's
# end of the connection (RFC 9112 section 9.6) in the request's thread, this long and this
# much at most. gunicorn does it in the worker's main loop, which a client slow to close then
# stalls (no accepts, no kept-alive connection served) for up to 2 s.
CLOSE_WAIT_SECONDS = 2.0
CLOSE_WAIT_MAX_BYTES = 64 * 1024
# Largest unread body drained before the response when Django's own limit is off (None).
FALLBACK_DRAIN_BYTES = 2_621_440  # Django's default DATA_UPLOAD_MAX_MEMORY_SIZE
# A body larger than the drain bound is read off the socket (and discarded) after a
# "Connection: close" response, at most this much and this long, so that a client that sends
# its whole body before it reads (http.client, requests) gets the answer instead of a reset.
LINGER_MAX_BYTES = 64 * 1024 * 1024
LINGER_SECONDS = DEFAULT_WORKER_DATA_TIMEOUT
_READ_STEP = 64 * 1024


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ConnectionTable:
    """How many connections each worker holds, in memory the master shares with its workers.

    Created in the master (at import, before any fork): an anonymous shared mapping that every
    forked worker sees. Each worker claims a slot when it starts and then writes
    ``(pid, connections, monotonic time)`` there from its main loop. Entries are read without a
    lock: a count a moment old only makes the spread a connection less even.
    """

    _ENTRY = struct.Struct("=iid")  # pid, connections held, time of the write (CLOCK_MONOTONIC)

    def __init__(self, slots: int = TABLE_SLOTS) -> None:
        self.slots = slots
        self._mem = mmap.mmap(-1, slots * self._ENTRY.size)
        self._claim_lock = multiprocessing.Lock()

    def claim(self, pid: int) -> int | None:
        """A free slot for ``pid`` (a slot whose worker is gone counts as free), or None."""
        # A worker killed while holding the lock must not keep every successor from starting:
        # after the wait the claim goes ahead unlocked (at worst two workers share a slot).
        locked = self._claim_lock.acquire(timeout=2.0)
        try:
            for slot in range(self.slots):
                owner, _, _ = self._ENTRY.unpack_from(self._mem, slot * self._ENTRY.size)
                if owner in (0, pid) or not _alive(owner):
                    self.write(slot, pid, 0)
                    return slot
            return None
        finally:
            if locked:
                self._claim_lock.release()

    def write(self, slot: int, pid: int, connections: int) -> None:
        self._ENTRY.pack_into(
            self._mem, slot * self._ENTRY.size, pid, connections, time.monotonic()
        )

    def release(self, slot: int, pid: int) -> None:
        owner, _, _ = self._ENTRY.unpack_from(self._mem, slot * self._ENTRY.size)
        if owner == pid:
            self._ENTRY.pack_into(self._mem, slot * self._ENTRY.size, 0, 0, 0.0)

    def live_siblings(self, slot: int) -> int:
        now = time.monotonic()
        return sum(
            1
            for index, (pid, _, written) in enumerate(self._ENTRY.iter_unpack(self._mem))
            if pid and index != slot and now - written < STALE_ENTRY_SECONDS
        )

    def leave_if_complete(self, slot: int, pid: int, siblings: int) -> bool:
        """Release ``slot`` if at least ``siblings`` live siblings are listed, atomically with
        respect to other workers doing the same: of two workers due together, one leaves."""
        locked = self._claim_lock.acquire(timeout=2.0)
        try:
            if self.live_siblings(slot) < siblings:
                return False
            self.release(slot, pid)
            return True
        finally:
            if locked:
                self._claim_lock.release()

    def fewest_elsewhere(self, slot: int) -> int | None:
        """The fewest connections a live sibling of ``slot``'s worker holds (None: no sibling)."""
        now = time.monotonic()
        fewest: int | None = None
        for index, (pid, connections, written) in enumerate(self._ENTRY.iter_unpack(self._mem)):
            if pid and index != slot and now - written < STALE_ENTRY_SECONDS:
                fewest = connections if fewest is None else min(fewest, connections)
        return fewest


class _Connection(TConn):
    """gunicorn's connection, which can be half-closed (and drained) in a request thread; the
    main loop then only closes the socket."""

    half_closed = False

    def close(self, graceful: bool = False) -> None:
        if self.half_closed:
            with contextlib.suppress(OSError):
                self.sock.close()
            return
        super().close(graceful)

    def half_close(self, seconds: float, max_bytes: int) -> None:
        """Send FIN after the response, and read (and discard) until the client's FIN, at most
        ``seconds`` and ``max_bytes``: closing with unread data would reset the connection and
        could destroy the response in flight."""
        self.half_closed = True
        deadline = time.monotonic() + seconds
        drained = 0
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
            while drained < max_bytes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.sock.settimeout(remaining)
                data = self.sock.recv(_READ_STEP)
                if not data:
                    break
                drained += len(data)


def write_error_in_api_shape(sock: socket.socket, status: int, reason: str, message: str) -> None:
    """gunicorn's answer to a request it refuses before the application (``util.write_error``:
    a request line or header it cannot parse, one over its size limits), in the API's error
    shape instead of an HTML page: the same status and ``Connection: close``."""
    from chefops.api.errors import INTERNAL_ERROR_BODY, error_body

    payload = INTERNAL_ERROR_BODY if status >= 500 and not message else error_body(status, message)
    body = json.dumps(payload, separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    gunicorn_util.write_nonblock(sock, head.encode("latin-1") + body)


class ChefOpsThreadWorker(ThreadWorker):
    """gunicorn's gthread worker with balanced accepts and settled request bodies."""

    table = ConnectionTable()
    wsgi: Any  # the application, set by gunicorn's load_wsgi

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slot: int | None = None
        # Guards _slot and this worker's entry: the main loop writes it, a request thread may
        # take it out (recycling), and a write after that must not list the worker again.
        self._slot_lock = threading.Lock()
        self._own_pid = 0
        self._accept_paused_until = 0.0
        self._request = threading.local()  # the request a thread is serving (req, conn)
        self._drain_bytes = FALLBACK_DRAIN_BYTES

    # --- process life -------------------------------------------------------------------

    def load_wsgi(self) -> None:
        super().load_wsgi()
        # The application is loaded: so are Django's settings, unless it is not Django's
        # (bench/bare_wsgi.py, the benchmark's reference), whose bodies get the fallback.
        django_conf = sys.modules.get("django.conf")
        limit = None
        if django_conf is not None and django_conf.settings.configured:
            limit = getattr(django_conf.settings, "DATA_UPLOAD_MAX_MEMORY_SIZE", None)
        self._drain_bytes = FALLBACK_DRAIN_BYTES if limit is None else int(limit)
        if limit is not None:
            # Requests gunicorn cannot parse are answered in the API's error shape too.
            gunicorn_util.write_error = write_error_in_api_shape
        app: Any = self.wsgi
        self.wsgi = self._settling_bodies(app)

    def run(self) -> None:
        # In the table only from now on, when the application is loaded: a booting worker
        # listed with no connections would hold its siblings back while it cannot accept.
        self._own_pid = os.getpid()
        self._slot = self.table.claim(self._own_pid)
        try:
            super().run()
        finally:
            self._leave_table()

    def _leave_table(self) -> None:
        with self._slot_lock:
            if self._slot is not None:
                self.table.release(self._slot, self._own_pid)
                self._slot = None

    def _publish(self) -> int | None:
        """Write this worker's connection count to its entry; its slot (None: not listed)."""
        with self._slot_lock:
            if self._slot is not None:
                self.table.write(self._slot, self._own_pid, self.nr_conns)
            return self._slot

    # --- accepting: balanced over the workers -------------------------------------------

    def _may_accept(self) -> bool:
        """Whether this worker should take the next connection: it publishes its own count,
        then accepts if no live sibling holds fewer. The least loaded worker always accepts,
        so the backlog never waits for a worker that holds back."""
        if not self.alive or time.monotonic() < self._accept_paused_until:
            return False
        slot = self._publish()
        if slot is None:
            return True
        fewest = self.table.fewest_elsewhere(slot)
        return fewest is None or self.nr_conns <= fewest

    def set_accept_enabled(self, enabled: bool) -> None:
        # gunicorn's loop turns accepting back on whenever the worker is below
        # worker_connections; it stays off while a sibling holds fewer connections.
        super().set_accept_enabled(enabled and self._may_accept())

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        if not self.alive:
            # Stopping (recycled, or a deploy): accepts nothing more, so out of the table at
            # once; its count falling as its connections close must not hold siblings back.
            self._leave_table()
        else:
            self._publish()
        if self.alive and not self._accepting and self.nr_conns < self.worker_connections:
            timeout = min(timeout, HELD_BACK_RECHECK_SECONDS)
        super().wait_for_and_dispatch_events(timeout)

    def accept(self, listener: Any) -> None:
        """Take one connection, if this worker is (one of) the least loaded, and wait for its
        first bytes on the poller rather than on a thread."""
        if not self._may_accept():
            super().set_accept_enabled(False)
            return
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                # Out of descriptors or memory: gunicorn would let the error end the worker.
                self.log.warning("Cannot accept a connection (%s); pausing accepts", exc)
                self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE_SECONDS
                super().set_accept_enabled(False)
                return
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED):
                return  # a sibling took it, or the client gave up
            raise
        self.nr_conns += 1
        conn = _Connection(self.cfg, client, address, listener.getsockname())
        # The same budget gunicorn gives a new connection (a thread's wait, then the poller's);
        # every entry of pending_conns gets the same delay, so the deque stays in time order.
        conn.timeout = time.monotonic() + DEFAULT_WORKER_DATA_TIMEOUT + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )
        self._publish()

    def _over_share(self) -> bool:
        """Whether this worker holds more than SHED_MARGIN connections above a live sibling."""
        slot = self._slot
        if slot is None:
            return False
        fewest = self.table.fewest_elsewhere(slot)
        return fewest is not None and self.nr_conns > fewest + SHED_MARGIN

    def _recycle_or_defer(self) -> None:
        """gunicorn is about to recycle this worker (max_requests): only if every sibling is
        up, and then out of the table at once so that no sibling recycles meanwhile."""
        limit = 2 * (self.cfg.max_requests + self.cfg.max_requests_jitter)
        siblings = max(0, self.cfg.workers - 1)
        with self._slot_lock:
            if self._slot is None:
                return
            if self.nr + 1 < limit and not self.table.leave_if_complete(
                self._slot, self._own_pid, siblings
            ):
                self.max_requests = self.nr + RECYCLE_DEFER_REQUESTS
                return
            self.table.release(self._slot, self._own_pid)  # a no-op if it left just now
            self._slot = None  # gunicorn stops accepting and ends the worker

    # --- serving a request: shedding, and bodies the application did not read -----------

    def handle_request(self, req: Any, conn: Any) -> bool:
        self._request.current = (req, conn)
        self._request.linger = False
        if self._over_share():
            req.must_close = True  # the response says "Connection: close"
        if self.nr + 1 >= self.max_requests:
            self._recycle_or_defer()
        try:
            return bool(super().handle_request(req, conn))
        finally:
            self._request.current = None

    def _settling_bodies(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Any]:
        def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            result = app(environ, start_response)
            current = getattr(self._request, "current", None)  # None under HTTP/2
            if current is not None and not self._drain_unread_body(*current):
                # The response (not sent yet: gunicorn writes it after this returns) says
                # "Connection: close"; the rest of the body is read off after it.
                current[0].must_close = True
                self._request.linger = True
            return result

        return application

    def _drain_unread_body(self, req: Any, conn: Any) -> bool:
        """Read what the application left of the request body, before the response starts;
        False when the connection cannot be reused (too large, too slow or malformed)."""
        body = req.body
        if body is None:
            return True
        if body.failed:
            return False
        reader = body.reader
        if isinstance(reader, LengthReader) and reader.length > self._drain_bytes:
            return False  # known too large: not worth reading before the answer
        return _read_body(body, conn.sock, self._drain_bytes + 1, DEFAULT_WORKER_DATA_TIMEOUT)

    def _keepalive_after(self, conn: Any, keepalive: bool) -> bool:
        if getattr(self._request, "linger", False):
            self._request.linger = False
            req = conn.parser.mesg
            if req is not None and req.body is not None:
                with contextlib.suppress(OSError):  # the client is gone: the socket closes
                    conn.sock.shutdown(socket.SHUT_WR)  # the response is complete: FIN now
                    _read_body(req.body, conn.sock, LINGER_MAX_BYTES, LINGER_SECONDS)
            keep = False
        else:
            keep = bool(super()._keepalive_after(conn, keepalive))
        if not keep and isinstance(conn, _Connection):
            conn.half_close(CLOSE_WAIT_SECONDS, CLOSE_WAIT_MAX_BYTES)
        return keep


def _read_body(body: Any, sock: socket.socket, max_bytes: int, seconds: float) -> bool:
    """Read and discard ``body`` to its end; False if it holds ``max_bytes`` or more, stalls
    past ``seconds`` or breaks. gunicorn's ``Body`` knows the framing (length or chunked), so
    the read stops exactly where the next request would start."""
    deadline = time.monotonic() + seconds
    prior_timeout = sock.gettimeout()
    drained = 0
    try:
        while drained < max_bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            sock.settimeout(remaining)
            data = body.read(min(_READ_STEP, max_bytes - drained))
            if not data:
                return True
            drained += len(data)
        return False
    except Exception:  # noqa: BLE001 - a timeout, a reset, or a malformed chunk: all end here
        return False
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(prior_timeout)
