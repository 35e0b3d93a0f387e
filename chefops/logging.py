"""Log plumbing: a request id carried in a context variable, and INFO sampling."""

from __future__ import annotations

import logging
import random
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")


def current_request_id() -> str | None:
    value = request_id_var.get()
    return None if value == "-" else value


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record so formatters can always reference it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class SamplingFilter(logging.Filter):
    """Keeps every WARNING and above, a random share of INFO, and DEBUG unless told to drop it.

    INFO is the bulk of the volume under load (request lines, job progress); sampling it keeps
    log shipping cheap while errors and warnings are never lost. Audit trails must not be
    sampled: records from a logger named ``audit`` or ``*.audit``, or logged with
    ``extra={"log_always": True}``, are always kept.
    """

    def __init__(
        self,
        info_rate: float = 1.0,
        drop_debug: bool = False,
        rng: random.Random | None = None,
        name: str = "",
    ) -> None:
        super().__init__(name)
        if not 0.0 <= info_rate <= 1.0:
            raise ValueError(f"info_rate must be between 0 and 1, not {info_rate!r}")
        self.info_rate = info_rate
        self.drop_debug = drop_debug
        # Sampling needs no cryptographic randomness; a seedable generator makes tests exact.
        self._random = (rng or random.Random()).random  # noqa: S311

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        if getattr(record, "log_always", False) or _is_audit_logger(record.name):
            return True
        if record.levelno >= logging.INFO:
            return self.info_rate >= 1.0 or self._random() < self.info_rate
        return not self.drop_debug


def _is_audit_logger(name: str) -> bool:
    return name == "audit" or name.endswith(".audit")
