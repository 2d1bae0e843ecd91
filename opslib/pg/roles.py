"""PostgreSQL role passwords: set one (``ALTER ROLE ... PASSWORD``), test a login, end the
sessions opened with the old one.

The password never reaches the server in clear text: it is hashed client side into a
SCRAM-SHA-256 verifier with libpq's ``PQencryptPasswordConn`` (what ``psql \\password`` does)
and the statement is composed with :mod:`psycopg.sql` (identifier and literal quoted by the
driver), so neither the server log (``log_statement``) nor ``pg_stat_statements`` nor an error
message can carry it. Values are fetched at apply time through the ``fetch_value`` callable
the runbook binds (plans are evidence: a :class:`~opslib.core.plans.Change` holds only the
secret's id and version) and registered with :func:`opslib.core.redact.register_secret` at once.

PostgreSQL keeps ONE password per role: the moment the new one is set, the old one stops
working for new logins, while sessions already opened with it stay connected. So the "test"
handler, when the new password does not log in, sets the role back to the current secret's
password (the rotation then stops there: nothing is half-rotated), and revoking the previous
credential means ending the sessions that were opened before the rotation.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass

from opslib.core import executors
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus
from opslib.core.redact import register_secret

SET_ACTION = "pg:ALTER ROLE PASSWORD"
TEST_ACTION = "pg:login test"
END_SESSIONS_ACTION = "pg:terminate sessions of role"
LOGIN_TIMEOUT_S = 5

#: fetch_value(secret_id, version_id_or_stage, field) -> the field's value (registered as secret)
FetchValue = Callable[[str, str, str], str]


@dataclass(frozen=True)
class LoginTarget:
    """Where the application logs in (the secret's host, port, dbname, username); no password."""

    host: str
    port: int
    dbname: str
    username: str

    def __str__(self) -> str:
        return f"{self.username}@{self.host}:{self.port}/{self.dbname}"


def login(
    target: LoginTarget, password: str, *, timeout_s: int = LOGIN_TIMEOUT_S
) -> tuple[bool, str]:
    """Try a login with ``password`` (given as a keyword, never in a conninfo string).

    Returns (worked, detail); the detail is the server's first message line, which never
    holds the password (libpq does not echo it).
    """
    import psycopg

    register_secret(password)
    try:
        with psycopg.connect(
            host=target.host,
            port=target.port,
            dbname=target.dbname,
            user=target.username,
            password=password,
            connect_timeout=timeout_s,
            application_name="opslib/login-test",
        ) as conn:
            who = conn.execute("SELECT current_user").fetchone()[0]
        return True, f"logged in as {who}"
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return False, first[:300]


def role_exists(role: str, *, conn) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def can_alter_role(role: str, *, conn) -> tuple[bool, str]:
    """Whether the admin session may set ``role``'s password (superuser or CREATEROLE)."""
    row = conn.execute(
        "SELECT rolsuper, rolcreaterole, current_user FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    if row and (row[0] or row[1]):
        return True, ""
    return False, f"{row[2] if row else 'the admin role'} is neither superuser nor CREATEROLE"


def _set_password(conn, role: str, password: str) -> None:
    from psycopg import sql

    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
    conn.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(verifier.decode())
        )
    )


def plan_set(role: str, *, secret_id: str, version_id: str, server: str) -> Change:
    return Change(
        action=SET_ACTION,
        target=f"role {role} on {server}",
        effect=f"set the password of {role} to the AWSPENDING value (version {version_id[:8]}), hashed client side",
        params={"role": role, "secret_id": secret_id, "version_id": version_id},
    )


def plan_test(target: LoginTarget, *, secret_id: str, version_id: str) -> Change:
    return Change(
        action=TEST_ACTION,
        target=str(target),
        effect="log in with the new password; if it fails, set the role back to the AWSCURRENT password and stop",
        params={
            "host": target.host,
            "port": target.port,
            "dbname": target.dbname,
            "username": target.username,
            "secret_id": secret_id,
            "version_id": version_id,
        },
    )


def plan_end_sessions(role: str, *, server: str) -> Change:
    return Change(
        action=END_SESSIONS_ACTION,
        target=f"role {role} on {server}",
        effect=f"terminate the sessions of {role} opened before the rotation (they authenticated with the old password)",
        params={"role": role},
    )


@executors.register(SET_ACTION)
def set_password(change: Change, *, conn, fetch_value: FetchValue) -> ChangeOutcome:
    """ALTER ROLE ... PASSWORD with the pending version's password (SCRAM verifier)."""
    import psycopg

    p = change.params
    password = register_secret(fetch_value(p["secret_id"], p["version_id"], "password"))
    try:
        _set_password(conn, p["role"], password)
    except psycopg.Error as exc:
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.FAILED,
            f"ALTER ROLE refused: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}",
        )
    at = _dt.datetime.now(_dt.UTC).isoformat()
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        "password set (SCRAM-SHA-256)",
        {"set_at": at},
    )


@executors.register(TEST_ACTION)
def test_login(change: Change, *, conn, fetch_value: FetchValue) -> ChangeOutcome:
    """Log in with the new password; on failure put the role's previous password back."""
    p = change.params
    target = LoginTarget(p["host"], int(p["port"]), p["dbname"], p["username"])
    new = register_secret(fetch_value(p["secret_id"], p["version_id"], "password"))
    ok, detail = login(target, new)
    if ok:
        return ChangeOutcome(
            change.action, change.target, ChangeStatus.APPLIED, f"new password works: {detail}"
        )
    old = register_secret(fetch_value(p["secret_id"], "AWSCURRENT", "password"))
    try:
        _set_password(conn, p["username"], old)
        restored = "the role's password was set back to the AWSCURRENT one; AWSCURRENT is unchanged"
    except Exception as exc:  # noqa: BLE001 - reported: the operator must know the role is in between
        restored = f"SETTING THE OLD PASSWORD BACK FAILED ({type(exc).__name__}); set it by hand from AWSCURRENT"
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.FAILED,
        f"login with the new password failed ({detail}); {restored}; rotation stopped",
    )


@executors.register(END_SESSIONS_ACTION)
def end_sessions(change: Change, *, conn, rotated_at: Callable[[], str | None]) -> ChangeOutcome:
    """pg_terminate_backend for the role's sessions that started before the rotation."""
    role = change.params["role"]
    since = rotated_at()
    if not since:
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.SKIPPED,
            "no rotation time known: nothing terminated",
        )
    rows = conn.execute(
        "SELECT pid, pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
        "WHERE usename = %s AND backend_start < %s::timestamptz AND pid <> pg_backend_pid()",
        (role, since),
    ).fetchall()
    pids = [r[0] for r in rows if r[1]]
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"{len(pids)} session(s) opened before the rotation terminated",
        {"pids": pids},
    )
