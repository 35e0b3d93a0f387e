"""Pure rules of the outbox: retry backoff and the outcome of a failed delivery."""

from __future__ import annotations

from datetime import timedelta

BACKOFF_BASE_SECONDS = 1.0
STALE_CLAIM_SECONDS = 60


def retry_delay(*, attempts: int, jitter: float) -> timedelta:
    """Wait before the next try after ``attempts`` failures: 1 s x 2^attempts + jitter.

    ``jitter`` is a fraction of a second in [0, 1): it spreads the retries of events that failed
    together (an outage) so they do not all come back in the same instant.
    """
    if attempts < 1:
        raise ValueError("attempts counts failures so far and starts at 1")
    if not 0.0 <= jitter < 1.0:
        raise ValueError("jitter must be in [0, 1)")
    return timedelta(seconds=BACKOFF_BASE_SECONDS * 2**attempts + jitter)


def is_exhausted(*, attempts: int, max_attempts: int) -> bool:
    """A delivery that has failed ``attempts`` times is given up (DEAD) at ``max_attempts``."""
    return attempts >= max_attempts


def error_text(handler_name: str, exc: BaseException, *, limit: int = 2000) -> str:
    """One line per failed handler for ``last_error``: who failed and how, bounded in size."""
    message = f"{handler_name}: {type(exc).__name__}: {exc}"
    return message if len(message) <= limit else message[: limit - 1] + "…"
