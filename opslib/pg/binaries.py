"""Where the PostgreSQL server binaries are, and whether the server's OS user can reach a path.

Restores of self-hosted PostgreSQL and the sandbox both start a server from a data directory:
they need ``initdb``/``pg_ctl``/``pg_verifybackup`` and, when running as root, a path the
``postgres`` OS user can traverse.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from opslib.core.errors import ClientConfigError


def find_bin_dir() -> Path:
    """Server binaries: ``pg_config --bindir``, else PATH, else the highest /usr/lib/postgresql/*/bin."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10
            )
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass  # a broken pg_config is just one candidate less
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(os.path.realpath(initdb)).parent)

    def version(p: str) -> float:
        try:
            return float(Path(p).parent.name)
        except ValueError:
            return 0.0

    candidates += [
        Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    ]
    for cand in candidates:
        if (cand / "initdb").exists() and (cand / "pg_ctl").exists():
            return cand
    raise ClientConfigError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found via pg_config, PATH or "
        "/usr/lib/postgresql/*/bin. Install them: apt-get install postgresql (or conda install postgresql)."
    )


def traversable_by(path: Path, user: str) -> bool:
    """Whether ``user`` can reach ``path`` (x permission on every ancestor)."""
    pw = pwd.getpwnam(user)
    gids = set(os.getgrouplist(user, pw.pw_gid))
    for p in [path, *path.parents]:
        st = p.stat()
        if st.st_uid == pw.pw_uid:
            bit = 0o100
        elif st.st_gid in gids:
            bit = 0o010
        else:
            bit = 0o001
        if not st.st_mode & bit:
            return False
    return True
