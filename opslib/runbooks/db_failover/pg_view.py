"""The database as PostgreSQL sees it: connections, primary or standby, replication lag, and
whether it accepts connections again after a reboot or failover.

RDS reports a reboot as over when the instance is ``available``; applications care whether
they can connect. The probe answers that, bounded; the view adds what CloudWatch shows late or
not at all (the live connection count against ``max_connections``, each replica's replay lag
from ``pg_stat_replication``, a standby's own lag from ``pg_last_xact_replay_timestamp()``,
which is NULL on a primary).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from opslib.clients import pg_connect
from opslib.core.errors import ClientConfigError
from opslib.core.findings import Finding, Severity

SOURCE = "postgres"
PROBE_POLL_SECONDS = 2.0
REPLICA_LAG_AMBER_S = 30.0


@dataclass(frozen=True)
class Replica:
    name: str
    client: str
    state: str
    replay_lag_seconds: float | None


@dataclass(frozen=True)
class PgView:
    """One read of the server: role, connections, replicas and lag."""

    server_version: str
    in_recovery: bool  # True on a standby/replica
    connections: int
    max_connections: int
    replicas: tuple[Replica, ...]
    standby_lag_seconds: float | None  # on a standby: now - last replayed transaction

    @property
    def role(self) -> str:
        return "standby (read only)" if self.in_recovery else "primary (accepts writes)"

    def to_frame(self):
        import pandas as pd

        rows = [
            ("server", self.server_version),
            ("role", self.role),
            ("connections", f"{self.connections} of max_connections {self.max_connections}"),
            (
                "replicas streaming",
                ", ".join(
                    f"{r.name or r.client} {r.state} lag "
                    + ("n/a" if r.replay_lag_seconds is None else f"{r.replay_lag_seconds:.1f} s")
                    for r in self.replicas
                )
                or "(none)",
            ),
            (
                "own replication lag",
                "n/a (primary)"
                if not self.in_recovery
                else f"{self.standby_lag_seconds or 0:.1f} s behind",
            ),
        ]
        return pd.DataFrame(rows, columns=["fact", "value"])


def read(*, conn) -> PgView:
    """Role, connections, replicas and lag in one read-only pass."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT current_setting('server_version'), pg_is_in_recovery(), "
            "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), "
            "current_setting('max_connections')::int, "
            "extract(epoch FROM now() - pg_last_xact_replay_timestamp())"
        )
        version, recovery, conns, maxc, lag = cur.fetchone()
        cur.execute(
            "SELECT application_name, coalesce(host(client_addr), 'local'), state, "
            "extract(epoch FROM replay_lag) FROM pg_stat_replication ORDER BY application_name"
        )
        replicas = tuple(
            Replica(n, c, s, None if r is None else float(r)) for n, c, s, r in cur.fetchall()
        )
    return PgView(
        version,
        bool(recovery),
        int(conns),
        int(maxc),
        replicas,
        None if lag is None else float(lag),
    )


def findings(view: PgView) -> list[Finding]:
    out = []
    if view.max_connections and view.connections >= 0.8 * view.max_connections:
        out.append(
            Finding(
                Severity.WARNING,
                f"PostgreSQL: {view.connections} of {view.max_connections} connections in use",
                SOURCE,
                "at or above 80% of max_connections",
                "A reboot drops them all at once: expect a reconnect storm; check the pools first.",
            )
        )
    for r in view.replicas:
        if r.replay_lag_seconds is not None and r.replay_lag_seconds >= REPLICA_LAG_AMBER_S:
            out.append(
                Finding(
                    Severity.WARNING,
                    f"PostgreSQL replica {r.name or r.client}: {r.replay_lag_seconds:.0f} s behind",
                    SOURCE,
                    f"replay lag from pg_stat_replication (threshold {REPLICA_LAG_AMBER_S:g} s)",
                    "Promoting a lagging replica loses the transactions it has not replayed.",
                )
            )
    return out


@dataclass(frozen=True)
class ConnectProbe:
    """Whether a new connection was accepted, how long after the probe started, and why not."""

    accepted: bool
    seconds: float
    attempts: int
    error: str = ""


def probe(pg_dsn: str, *, timeout_s: float, poll_s: float = PROBE_POLL_SECONDS) -> ConnectProbe:
    """Open a new connection (and run SELECT 1) until one succeeds, bounded by ``timeout_s``."""
    t0 = time.monotonic()
    import psycopg

    attempts = 0
    error = ""
    while True:
        attempts += 1
        try:
            with pg_connect(pg_dsn, runbook="db-failover", connect_timeout=5) as conn:
                conn.execute("SELECT 1")
            return ConnectProbe(True, round(time.monotonic() - t0, 1), attempts)
        except ClientConfigError as exc:
            error = str(exc)
        except psycopg.Error as exc:  # connected, then dropped (still restarting): try again
            error = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if time.monotonic() - t0 >= timeout_s:
            return ConnectProbe(False, round(time.monotonic() - t0, 1), attempts, error)
        time.sleep(min(poll_s, max(0.0, timeout_s - (time.monotonic() - t0))))
