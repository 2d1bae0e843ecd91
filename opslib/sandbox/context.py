"""What a scenario's ``seed(ctx)`` gets: clients and helpers bound to one running sandbox.

Clients are built through :mod:`opslib.clients` (the one place clients are built) but
pointed explicitly at the sandbox, so seeding works from any process, whatever its
environment says.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from opslib.clients import aws_config, k8s_api, pg_connect
from opslib.sandbox import postgres
from opslib.sandbox.state import SandboxInfo, env_vars, spawn_tracked


class ScenarioContext:
    """Handles on the sandbox for scenario seeds (see opslib/sandbox/scenarios/__init__.py)."""

    def __init__(self, info: SandboxInfo, *, data_root: Path | str | None = None) -> None:
        self.info = info
        # scenario files live next to the cluster, where the PostgreSQL OS user can reach them
        self.data_root = Path(data_root) if data_root else Path(info.pg_data_dir).parent.parent

    @property
    def pg_os_user(self) -> str:
        return self.info.pg_os_user

    def aws(self, service: str, *, region: str = ""):
        """A boto3 client on the sandbox's AWS endpoint, with the dummy credentials."""
        import boto3

        session = boto3.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=region or self.info.region,
        )
        return session.client(service, endpoint_url=self.info.aws_endpoint, config=aws_config())

    def pg_conninfo(self, dbname: str = "") -> str:
        """libpq conninfo for the sandbox cluster (trust auth: no password)."""
        return (
            f"host={self.info.pg_host} port={self.info.pg_port} user={self.info.pg_user} "
            f"dbname={dbname or self.info.pg_database}"
        )

    def pg_connect(
        self,
        dbname: str = "",
        *,
        autocommit: bool = True,
        statement_timeout_ms: int = 300_000,
        **kw: Any,
    ):
        """A psycopg connection to the sandbox (seeds may load data: a generous statement timeout)."""

        return pg_connect(
            self.pg_conninfo(dbname),
            runbook="sandbox-seed",
            autocommit=autocommit,
            statement_timeout_ms=statement_timeout_ms,
            **kw,
        )

    def k8s(self):
        """A kubernetes ``ApiClient`` on the sandbox's API emulator."""

        return k8s_api(kubeconfig=self.info.kubeconfig)

    def env(self) -> dict[str, str]:
        """os.environ plus the sandbox variables (what a spawned process sees)."""
        return {**os.environ, **env_vars(self.info)}

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        """Start a background process that ``down`` stops; spawning ``name`` again replaces it.

        Its output goes to ``<state>/logs/spawn-<name>.log``. Returns the pid.
        """
        return spawn_tracked(
            self.info.state_dir, name, [str(a) for a in argv], env={**self.env(), **(env or {})}
        )

    def scenario_dir(self, name: str) -> Path:
        """A directory owned by scenario ``name``, reachable by the PostgreSQL OS user."""
        path = self.data_root / "scenarios" / name
        path.mkdir(parents=True, exist_ok=True)
        for p in (self.data_root / "scenarios", path):
            os.chmod(p, 0o755)
        return path

    def chown_to_pg(self, path: Path | str) -> None:
        """Hand ``path`` (recursively) to the PostgreSQL OS user (no-op unless we are root)."""
        postgres.chown(path, self.pg_os_user)

    def pg_bin(self, name: str) -> str:
        """Path of a PostgreSQL binary of the sandbox's version (pg_basebackup, psql, ...)."""
        return str(Path(self.info.pg_bin_dir) / name)

    def run_as_pg(self, argv: list[str], **kw: Any):
        """``subprocess.run`` as the PostgreSQL OS user (for pg_ctl/pg_basebackup on owned dirs)."""
        import subprocess

        if os.geteuid() == 0 and self.pg_os_user != "root":
            kw.setdefault("user", self.pg_os_user)
        kw.setdefault("cwd", str(self.data_root))
        kw.setdefault("timeout", 120)
        return subprocess.run([str(a) for a in argv], **kw)
