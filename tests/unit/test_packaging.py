"""A production install (no extras) runs runbooks and never needs a mock server or JupyterLab.

``pip install .`` must give a working ``opslib run`` on real endpoints without moto, kmock or
JupyterLab; the sandbox, which needs them, refuses with exit 2 naming the extra. The test
hides the extras' packages from every process of the run (the CLI and the notebook kernel) with
a ``sitecustomize`` import blocker on PYTHONPATH, which is what an install without them looks
like to Python.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
EXTRAS_ONLY = ("moto", "kmock", "jsonpatch", "jupyterlab", "jupyter_server", "starlette", "uvicorn")
pytestmark = pytest.mark.timeout(180)

BLOCKER = textwrap.dedent(
    f"""
    import importlib.abc, sys
    BLOCKED = {EXTRAS_ONLY!r}
    class _NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}} (not installed)", name=name)
            return None
    sys.meta_path.insert(0, _NotInstalled())
    """
)


@pytest.fixture
def without_extras(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSLIB_SANDBOX")}
    env["PYTHONPATH"] = str(site)
    env["OPSLIB_NOTEBOOKS"] = str(FIXTURES)
    return env


def _opslib(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "opslib.cli", *args],
        capture_output=True,
        text=True,
        timeout=150,
        env=env,
        cwd=cwd,
    )


def test_core_dependencies_leave_the_sandbox_and_lab_to_extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"]).lower()
    for name in ("moto", "kmock", "jupyterlab", "jsonpatch", "pytest", "starlette", "uvicorn"):
        assert name not in core, f"{name} is a core dependency; it belongs in an extra"
    extras = project["optional-dependencies"]
    assert any(d.startswith("moto") for d in extras["sandbox"])
    assert any(d.startswith("kmock") for d in extras["sandbox"])
    assert any(d.startswith("jupyterlab") for d in extras["lab"])
    assert any(d.startswith("starlette") for d in extras["serve"])
    assert any(d.startswith("uvicorn") for d in extras["serve"])


def test_the_blocker_really_hides_the_extras(without_extras, tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "import moto"],
        capture_output=True,
        text=True,
        timeout=60,
        env=without_extras,
    )
    assert out.returncode != 0 and "not installed" in out.stderr


def test_run_works_without_the_extras(without_extras, tmp_path):
    out = _opslib(
        "run",
        "tiny",
        "-p",
        "label",
        "prod",
        "--evidence-dir",
        str(tmp_path / "ev"),
        env=without_extras,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    bundle = Path(out.stdout.strip().splitlines()[-1])
    record = json.loads((bundle / "record.json").read_text())
    assert record["status"] == "succeeded"
    assert record["sandbox"] is False


def test_sandbox_up_without_the_extra_exits_2_naming_it(without_extras, tmp_path):
    out = _opslib(
        "sandbox", "up", "--state-dir", str(tmp_path / "sb"), env=without_extras, cwd=tmp_path
    )
    assert out.returncode == 2, out.stderr[-3000:]
    assert "opslib[sandbox]" in out.stderr
    assert not (tmp_path / "sb" / "state.json").exists()


def test_run_with_sandbox_without_the_extra_exits_2(without_extras, tmp_path):
    out = _opslib("run", "tiny", "--sandbox", env=without_extras, cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-3000:]
    assert "opslib[sandbox]" in out.stderr


def test_serve_without_the_extra_exits_2_naming_it(without_extras, tmp_path):
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes: []\n")
    out = _opslib("serve", "--routes", str(routes), env=without_extras, cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-3000:]
    assert "opslib[serve]" in out.stderr


def _locked(path: Path) -> dict[str, str]:
    """name -> version of a requirements lock (``name==version \\`` lines)."""
    pins = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, _, rest = line.partition("==")
            pins[name.strip().lower().replace("_", "-")] = rest.split()[0].rstrip("\\")
    return pins


def test_the_locks_pin_every_dependency_with_hashes():
    """make demo, make test, CI and the image install the locks: each must hold every
    dependency pyproject.toml declares for it, at a version inside its range, with hashes."""
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    dev_reqs = [r for r in extras["dev"] if not r.startswith("opslib")]
    for name in ("lab", "sandbox", "serve"):
        dev_reqs += extras[name]
    for lock, reqs in (
        ("core.txt", project["dependencies"]),
        ("dev.txt", project["dependencies"] + dev_reqs),
    ):
        path = ROOT / "requirements" / lock
        pins = _locked(path)
        text = path.read_text()
        for spec in reqs:
            req = Requirement(spec.split("#")[0].strip())
            name = req.name.lower().replace("_", "-")
            assert name in pins, f"{name} is not in requirements/{lock}: run make lock"
            assert req.specifier.contains(pins[name], prereleases=True), (
                f"requirements/{lock} pins {name}=={pins[name]}, outside {req.specifier}: make lock"
            )
        assert text.count("==") == text.count("--hash=sha256:") or "--hash=sha256:" in text
        blocks = [b for b in text.split("\n") if "==" in b and not b.startswith((" ", "#"))]
        assert all(b.rstrip().endswith("\\") for b in blocks), f"{lock}: a pin without hashes"
