from __future__ import annotations

from datetime import timedelta

import pytest

from outbox.rules import error_text, is_exhausted, retry_delay


@pytest.mark.parametrize(
    ("attempts", "jitter", "seconds"),
    [(1, 0.0, 2.0), (1, 0.999, 2.999), (2, 0.5, 4.5), (3, 0.0, 8.0), (4, 0.25, 16.25)],
)
def test_retry_delay_doubles_from_one_second_plus_jitter(
    attempts: int, jitter: float, seconds: float
) -> None:
    assert retry_delay(attempts=attempts, jitter=jitter) == timedelta(seconds=seconds)


@pytest.mark.parametrize(("attempts", "jitter"), [(0, 0.0), (1, -0.1), (1, 1.0)])
def test_retry_delay_rejects_impossible_input(attempts: int, jitter: float) -> None:
    with pytest.raises(ValueError):
        retry_delay(attempts=attempts, jitter=jitter)


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "dead"), [(1, 5, False), (4, 5, False), (5, 5, True), (6, 5, True)]
)
def test_the_fifth_failure_is_the_last(attempts: int, max_attempts: int, dead: bool) -> None:
    assert is_exhausted(attempts=attempts, max_attempts=max_attempts) is dead


def test_error_text_names_the_handler_and_is_bounded() -> None:
    assert error_text("h", ValueError("bad")) == "h: ValueError: bad"
    long = error_text("h", RuntimeError("x" * 5000), limit=100)
    assert len(long) == 100 and long.endswith("…")
