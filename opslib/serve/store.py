"""The receiver's memory: every accepted alert in SQLite, written before the 202.

An alert is a row before the sender hears "accepted", so a receiver killed at any moment loses
nothing: at start-up, rows still ``queued`` (and ``running`` ones, whose run died with the
process) are run again. Deduplication is a look-up of the same key within the window, inside
the same lock and transaction as the insert, so a burst of one notification is one row.
SQLite (standard library, WAL, ``synchronous=FULL``) because one receiver per state dir needs
no server, and the file survives the process.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key TEXT NOT NULL,
    source TEXT NOT NULL,
    received_at REAL NOT NULL,
    state TEXT NOT NULL,
    route TEXT NOT NULL DEFAULT '',
    runbook TEXT NOT NULL DEFAULT '',
    parameters TEXT NOT NULL DEFAULT '{}',
    trigger TEXT NOT NULL DEFAULT '{}',
    skipped TEXT NOT NULL DEFAULT '',
    executor TEXT NOT NULL DEFAULT '',
    job TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    run_status TEXT NOT NULL DEFAULT '',
    exit_code INTEGER,
    bundle TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS alerts_key ON alerts (dedup_key, received_at);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state, id);
"""


class RowState(StrEnum):
    """Where an accepted alert is: waiting for a slot, running, finished, or not to be run."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    IGNORED = "ignored"


@dataclass(frozen=True)
class Queued:
    """A run to start: what the dispatcher hands an executor."""

    id: int
    runbook: str
    parameters: dict[str, Any]
    trigger: dict[str, Any]
    route: str
    job: str
    attempts: int


def _value(field: Any) -> Any:
    return field() if callable(field) else field


class AlertStore:
    """SQLite at ``STATE_DIR/alerts.sqlite``; one connection, serialised by a lock."""

    def __init__(self, state_dir: str | Path, *, dedup_window_s: float = 3600.0) -> None:
        self.path = Path(state_dir) / "alerts.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.dedup_window_s = dedup_window_s
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # durable before the 202
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def accept(self, rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
        """Insert each row unless its key was seen within the window; one durable transaction.

        Returns ``(outcome, id)`` per row: ``("accepted"|"ignored", new id)`` or
        ``("duplicate", id of the earlier row)``. A row's ``trigger`` may be a callable
        returning it, called only when the row is inserted (the redacted payload costs more
        than the rest of the intake; a duplicate never needs it).
        """
        now = time.time()
        out: list[tuple[str, int]] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    prior = self._db.execute(
                        "SELECT id FROM alerts WHERE dedup_key = ? AND received_at >= ? "
                        "ORDER BY id DESC LIMIT 1",
                        (row["dedup_key"], now - self.dedup_window_s),
                    ).fetchone()
                    if prior is not None:
                        out.append(("duplicate", int(prior["id"])))
                        continue
                    state = RowState.IGNORED if row.get("skipped") else RowState.QUEUED
                    cur = self._db.execute(
                        "INSERT INTO alerts (dedup_key, source, received_at, state, route, runbook, "
                        "parameters, trigger, skipped, executor) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (
                            row["dedup_key"],
                            row["source"],
                            now,
                            state.value,
                            row.get("route", ""),
                            row.get("runbook", ""),
                            json.dumps(row.get("parameters") or {}, default=str),
                            json.dumps(_value(row.get("trigger")) or {}, default=str),
                            row.get("skipped", ""),
                            row.get("executor", ""),
                        ),
                    )
                    kind = "ignored" if state is RowState.IGNORED else "accepted"
                    out.append((kind, int(cur.lastrowid or 0)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return out

    def recover(self) -> int:
        """Re-queue runs a previous process left ``running`` (it died with them). Returns how many."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE alerts SET state = ? WHERE state = ?",
                (RowState.QUEUED.value, RowState.RUNNING.value),
            )
            return cur.rowcount

    def claim(self, executor: str) -> Queued | None:
        """The oldest queued run, marked running (None when the queue is empty)."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM alerts WHERE state = ? ORDER BY id LIMIT 1",
                (RowState.QUEUED.value,),
            ).fetchone()
            if row is None:
                return None
            self._db.execute(
                "UPDATE alerts SET state = ?, started_at = ?, executor = ?, attempts = attempts + 1 "
                "WHERE id = ?",
                (RowState.RUNNING.value, time.time(), executor, row["id"]),
            )
        return Queued(
            id=int(row["id"]),
            runbook=row["runbook"],
            parameters=json.loads(row["parameters"]),
            trigger=json.loads(row["trigger"]),
            route=row["route"],
            job=row["job"],
            attempts=int(row["attempts"]) + 1,
        )

    def set_job(self, row_id: int, job: str) -> None:
        with self._lock:
            self._db.execute("UPDATE alerts SET job = ? WHERE id = ?", (job, row_id))

    def finish(
        self, row_id: int, *, status: str, exit_code: int, bundle: str = "", error: str = ""
    ) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE alerts SET state = ?, finished_at = ?, run_status = ?, exit_code = ?, "
                "bundle = ?, error = ? WHERE id = ?",
                (RowState.DONE.value, time.time(), status, exit_code, bundle, error, row_id),
            )

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) AS n FROM alerts GROUP BY state")
            return {r["state"]: int(r["n"]) for r in rows}

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first: alert, runbook, status, exit code, bundle (what ``GET /runs`` shows)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM alerts ORDER BY id DESC LIMIT ?", (max(1, min(limit, 1000)),)
            ).fetchall()
        out = []
        for r in rows:
            trigger = json.loads(r["trigger"])
            out.append(
                {
                    "id": r["id"],
                    "received_at": r["received_at"],
                    "source": r["source"],
                    "alert": {k: trigger.get(k) for k in ("name", "state", "ids", "labels")},
                    "route": r["route"],
                    "runbook": r["runbook"],
                    "parameters": json.loads(r["parameters"]),
                    "state": r["state"],
                    "skipped": r["skipped"],
                    "executor": r["executor"],
                    "job": r["job"],
                    "attempts": r["attempts"],
                    "status": r["run_status"] or r["state"],
                    "exit_code": r["exit_code"],
                    "bundle": r["bundle"],
                    "error": r["error"],
                    "started_at": r["started_at"],
                    "finished_at": r["finished_at"],
                }
            )
        return out
