"""The PostgreSQL connection budget of one instance (README "Scaling"): what each process may
hold, the pool's default size, and whether the pool is on by default. Plain arithmetic on the
settings' values, shared by chefops/settings.py and the chefops.W010 check (chefops/checks.py).

What a process holds, measured (psycopg_pool 3.3, django-celery-beat 2.9, Celery 5.7):

* Without the pool (persistent connections, ``CONN_MAX_AGE``): one per thread that uses the
  database. A gunicorn worker keeps one per request thread; a Celery worker process one (Celery
  closes it after each task); beat one (measured: 1).
* With the pool: a process's first checkout arrives while the pool is still opening its
  ``min_size`` connections, so the pool grows by one for it, and shrinks back only after
  ``max_idle`` (10 min). A process that uses one connection at a time therefore holds
  ``max(DB_POOL_MIN, 1) + 1``: beat held 2 with ``DB_POOL_MIN=1`` (under ``make scale``, and
  alone), a probe process 3 with ``DB_POOL_MIN=2``. Celery's prefork workers close the pool after
  every task, so each task opens it again the same way. A gunicorn worker holds at most its
  pool's ``max_size`` (``DB_POOL_MAX``).
"""

from __future__ import annotations

from dataclasses import dataclass

# Exactly one beat per deployment; counted in every instance's budget (any instance may run it).
BEAT_PROCESSES = 1


@dataclass(frozen=True)
class Processes:
    """The processes of one instance and how they connect."""

    web_workers: int
    web_threads: int
    celery_processes: int
    pool: bool
    pool_min: int
    pool_max: int  # ignored without the pool

    @property
    def per_web_worker(self) -> int:
        return self.pool_max if self.pool else self.web_threads

    @property
    def per_single_threaded(self) -> int:
        """A Celery worker process or beat (one connection in use at a time)."""
        return max(self.pool_min, 1) + 1 if self.pool else 1

    def total(self) -> int:
        return (
            self.web_workers * self.per_web_worker
            + (self.celery_processes + BEAT_PROCESSES) * self.per_single_threaded
        )

    def arithmetic(self) -> str:
        single = self.per_single_threaded
        return (
            f"{self.web_workers} web workers x {self.per_web_worker} + "
            f"{self.celery_processes} Celery processes x {single} + "
            f"{BEAT_PROCESSES} beat x {single} = {self.total()}"
        )


def persistent_connections_fit(
    budget: int, *, web_workers: int, web_threads: int, celery_processes: int
) -> bool:
    """Whether one persistent connection per web thread, Celery process and beat fits."""
    persistent = Processes(
        web_workers, web_threads, celery_processes, pool=False, pool_min=0, pool_max=0
    )
    return persistent.total() <= budget


def default_pool_max(
    budget: int, *, web_workers: int, web_threads: int, celery_processes: int, pool_min: int
) -> int:
    """What each web worker's pool may hold once the Celery processes and beat have theirs,
    capped by its request threads (it never uses more at once), at least 1."""
    single = Processes(0, 0, 0, pool=True, pool_min=pool_min, pool_max=0).per_single_threaded
    left = budget - (celery_processes + BEAT_PROCESSES) * single
    return max(1, min(web_threads, left // max(web_workers, 1)))
