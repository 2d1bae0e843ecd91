"""The Dockerfile: parsed (no container runtime on these machines, so it is not built here),
checked for what a scheduler relies on, and its install command resolved in a fresh venv.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, buf = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip()
        if buf.endswith("\\"):
            buf = buf[:-1] + " "
            continue
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), " ".join(rest.split())))
        buf = ""
    assert not buf, "dangling line continuation"
    return out


def test_dockerfile_shape():
    ins = instructions()
    known = {"FROM", "ENV", "WORKDIR", "COPY", "RUN", "USER", "ENTRYPOINT", "CMD", "ARG", "LABEL"}
    assert {i for i, _ in ins} <= known
    froms = [a for i, a in ins if i == "FROM"]
    assert all(f.startswith("python:3.11-slim") for f in froms)
    last = max(n for n, (i, _) in enumerate(ins) if i == "FROM")
    final = ins[last:]
    (user,) = [a for i, a in final if i == "USER"]
    assert user.split(":")[0] not in {"0", "root"}
    (entry,) = [a for i, a in final if i == "ENTRYPOINT"]
    assert json.loads(entry) == ["opslib"]
    assert any(i == "COPY" and a.startswith("notebooks ") for i, a in final)
    env = " ".join(a for i, a in final if i == "ENV")
    assert "OPSLIB_NOTEBOOKS=/opt/opslib/notebooks" in env
    installs = [a for i, a in ins if i == "RUN" and "pip install" in a]
    assert installs and all("[" not in a.split("pip install", 1)[1] for a in installs)  # core only
    for _, src in (x for x in ins if x[0] == "COPY" and "--from" not in x[1]):
        for path in shlex.split(src)[:-1]:
            assert (ROOT / path).exists(), path


@pytest.mark.timeout(600)
def test_install_commands_resolve_in_a_fresh_venv(tmp_path):
    """The image's two installs (the locked core set with hashes, then opslib without
    dependencies) resolve in a plain venv, and pull no lab/sandbox/serve extra."""
    installs = [a for i, a in instructions() if i == "RUN" and "pip install" in a]
    assert any("--require-hashes -r requirements/core.txt" in a for a in installs)
    assert any("--no-deps ." in a for a in installs)
    venv.create(tmp_path / "v", with_pip=True)
    pip = tmp_path / "v" / "bin" / "pip"
    report = tmp_path / "r.json"
    out = subprocess.run(
        [str(pip), "install", "--dry-run", "--quiet", "--report", str(report),
         "--require-hashes", "-r", str(ROOT / "requirements" / "core.txt")],
        capture_output=True,
        text=True,
        timeout=540,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    names = {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}
    assert {"papermill", "boto3", "kubernetes", "psycopg"} <= names
    assert not names & {"jupyterlab", "moto", "kmock", "pytest", "starlette", "uvicorn"}
