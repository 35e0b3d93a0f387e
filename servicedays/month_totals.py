"""Per-contract monthly sums of the service days (``ContractMonthTotal``), kept by PostgreSQL.

Statement-level triggers on the service days turn each INSERT, UPDATE and DELETE (ORM, bulk,
raw SQL or COPY alike) into signed per-(contract, month) deltas, upserted in (contract, month)
order, so two writers lock the rows they share in the same order. A trigger on the contracts
removes a deleted contract's rows. Nothing in the application writes the table: the finance
metrics read it (servicedays/selectors.py), ``manage.py month_totals`` checks or rebuilds it.

The SQL names its tables as text, not through the models, because migration 0004 runs it: a
later change to the triggers is a new migration that calls ``install`` again (CREATE OR
REPLACE). A change the table of migration 0004 could not run (a new column, say) first freezes
today's SQL into 0004, so that a new database still migrates step by step. SQLite has no
statement triggers with transition tables: there the table stays empty and the metrics sum
the days themselves.
"""

from __future__ import annotations

from typing import Any

TABLE = "servicedays_contractmonthtotal"
DAYS = "servicedays_serviceday"
CONTRACTS = "contracts_contract"
_APPLY = f"{TABLE}_apply"
INSERT_TRIGGER = f"{TABLE}_ins"
_FORGET = f"{TABLE}_forget"
COLUMNS = ("served", "expected", "deviation_served", "deviation_expected")

# The sums of one month of a contract's days, as the finance metrics define them: the served
# quantities of CONFIRMED days; the expected quantities of all days; both over the days where
# both are above zero (the deviation KPI). An unset quantity counts for nothing.
_BOTH_SET = "expected_quantity > 0 AND served_quantity > 0"
_SUMS = {
    "served": "SUM(served_quantity) FILTER (WHERE status = 'CONFIRMED')",
    "expected": "SUM(expected_quantity)",
    "deviation_served": f"SUM(served_quantity) FILTER (WHERE {_BOTH_SET})",
    "deviation_expected": f"SUM(expected_quantity) FILTER (WHERE {_BOTH_SET})",
}
# The first day of the day's month, as a date (no time zone involved).
_MONTH = "service_date - EXTRACT(DAY FROM service_date)::int + 1"


def _per_month(source: str, sign: str = "") -> str:
    sums = ", ".join(f"{sign}COALESCE({_SUMS[name]}, 0) AS {name}" for name in COLUMNS)
    return f"SELECT contract_id, {_MONTH} AS month, {sums} FROM {source} GROUP BY 1, 2"  # noqa: S608


_ANY_NONZERO = " OR ".join(f"SUM({name}) <> 0" for name in COLUMNS)


def _upsert(parts: list[str]) -> str:
    """Add the summed ``parts`` (signed per-month rows) to the table, in key order."""
    union = "\n    UNION ALL ".join(parts)
    sums = ", ".join(f"SUM({name})" for name in COLUMNS)
    updates = ", ".join(f"{name} = t.{name} + EXCLUDED.{name}" for name in COLUMNS)
    return f"""
    INSERT INTO {TABLE} AS t (contract_id, month, {", ".join(COLUMNS)})
    SELECT contract_id, month, {sums}
    FROM ({union}) delta
    GROUP BY contract_id, month
    HAVING {_ANY_NONZERO}
    ORDER BY contract_id, month
    ON CONFLICT (contract_id, month) DO UPDATE SET {updates};"""  # noqa: S608


_INSTALL = f"""
CREATE OR REPLACE FUNCTION {_APPLY}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN{_upsert([_per_month("new_rows")])}
  ELSIF TG_OP = 'DELETE' THEN{_upsert([_per_month("old_rows", "-")])}
  ELSE{_upsert([_per_month("new_rows"), _per_month("old_rows", "-")])}
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION {_FORGET}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM {TABLE} WHERE contract_id IN (SELECT id FROM old_rows);
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS {INSERT_TRIGGER} ON {DAYS};
CREATE TRIGGER {INSERT_TRIGGER} AFTER INSERT ON {DAYS}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {_APPLY}();
DROP TRIGGER IF EXISTS {TABLE}_upd ON {DAYS};
CREATE TRIGGER {TABLE}_upd AFTER UPDATE ON {DAYS}
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION {_APPLY}();
DROP TRIGGER IF EXISTS {TABLE}_del ON {DAYS};
CREATE TRIGGER {TABLE}_del AFTER DELETE ON {DAYS}
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {_APPLY}();
DROP TRIGGER IF EXISTS {TABLE}_forget ON {CONTRACTS};
CREATE TRIGGER {TABLE}_forget AFTER DELETE ON {CONTRACTS}
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {_FORGET}();
"""  # noqa: S608 - fixed names, no input

_UNINSTALL = f"""
DROP TRIGGER IF EXISTS {INSERT_TRIGGER} ON {DAYS};
DROP TRIGGER IF EXISTS {TABLE}_upd ON {DAYS};
DROP TRIGGER IF EXISTS {TABLE}_del ON {DAYS};
DROP TRIGGER IF EXISTS {TABLE}_forget ON {CONTRACTS};
DROP FUNCTION IF EXISTS {_APPLY}();
DROP FUNCTION IF EXISTS {_FORGET}();
"""

# What the table should hold, computed from the days.
_RECOMPUTED = f"""
SELECT contract_id, month, {", ".join(f"SUM({name}) AS {name}" for name in COLUMNS)}
FROM ({_per_month(DAYS)}) d
GROUP BY contract_id, month
HAVING {_ANY_NONZERO}"""  # noqa: S608

# Rows where the table and the days disagree (a missing row counts as zeros).
_DIFFERENCES = f"""
SELECT COALESCE(t.contract_id, r.contract_id), COALESCE(t.month, r.month),
       {", ".join(f"COALESCE(t.{name}, 0), COALESCE(r.{name}, 0)" for name in COLUMNS)}
FROM {TABLE} t
FULL JOIN ({_RECOMPUTED}) r ON r.contract_id = t.contract_id AND r.month = t.month
WHERE {" OR ".join(f"COALESCE(t.{n}, 0) <> COALESCE(r.{n}, 0)" for n in COLUMNS)}
ORDER BY 1, 2"""  # noqa: S608


def install(cursor: Any) -> None:
    """Create (or replace) the functions and triggers."""
    cursor.execute(_INSTALL)


def uninstall(cursor: Any) -> None:
    cursor.execute(_UNINSTALL)


def rebuild(cursor: Any) -> int:
    """Recompute the table from the days, inside the caller's transaction: the days are locked
    against writes (SHARE) meanwhile, so no write slips between the read and the triggers.
    Returns the number of rows written."""
    cursor.execute(f"LOCK TABLE {DAYS} IN SHARE MODE")
    cursor.execute(f"DELETE FROM {TABLE}")  # noqa: S608
    cursor.execute(
        f"INSERT INTO {TABLE} (contract_id, month, {', '.join(COLUMNS)}) "  # noqa: S608
        f"SELECT contract_id, month, {', '.join(COLUMNS)} FROM ({_RECOMPUTED}) r"
    )
    return int(cursor.rowcount)


def differences(cursor: Any, limit: int = 100) -> list[tuple[Any, ...]]:
    """Up to ``limit`` (contract, month, then table and days for each sum) that disagree."""
    cursor.execute(_DIFFERENCES + f" LIMIT {int(limit)}")
    return list(cursor.fetchall())


def installed(cursor: Any) -> bool:
    """Whether the four triggers are there (and enabled)."""
    cursor.execute(
        "SELECT count(*) FROM pg_trigger WHERE tgname LIKE %s AND tgenabled <> 'D'",
        [f"{TABLE}\\_%"],
    )
    row = cursor.fetchone()
    return bool(row and row[0] == 4)
