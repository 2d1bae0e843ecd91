"""opslib defers what costs every process seconds at import and is almost never used:
rfc3987_syntax (3 s of lark grammars) until an IRI is checked, and papermill's HDFS handler
(pyarrow) altogether."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
import opslib, jsonschema
took = time.perf_counter() - t0
deferred = "lark" not in sys.modules
from jsonschema import Draft202012Validator
v = Draft202012Validator({"type": "string", "format": "iri"},
                         format_checker=Draft202012Validator.FORMAT_CHECKER)
good = [e.message for e in v.iter_errors("http://example.com/a?b=c")]
bad = [e.message for e in v.iter_errors("not an iri")]
print(json.dumps({"deferred": deferred, "seconds": took, "good": good, "bad": bad,
                  "loaded_after": "lark" in sys.modules}))
"""


def test_jsonschema_imports_fast_and_still_checks_iris():
    """rfc3987_syntax comes with JupyterLab (jupyter-events) and is in the lock: it must be
    there for this to mean anything."""
    import importlib.util

    assert importlib.util.find_spec("rfc3987_syntax") is not None
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    got = json.loads(out.stdout)
    assert got["deferred"], "importing opslib then jsonschema compiled the lark grammars"
    assert got["good"] == []
    assert got["bad"] == ["'not an iri' is not a 'iri'"]  # the real check, loaded on first use
    assert got["loaded_after"]


LEAN = """
import json, sys
from opslib.core.lazy_imports import import_papermill_lean
import_papermill_lean()
skipped = {n: n in sys.modules for n in ("pyarrow", "numpy")}
import papermill.iorw as iorw
stubs = {"hdfs": iorw.HadoopFileSystem.__name__, "s3": iorw.S3.__name__}
import pyarrow  # still importable afterwards, the real package
print(json.dumps({"skipped": skipped, "stubs": stubs, "pyarrow": pyarrow.__version__}))
"""


def test_papermill_imports_without_its_remote_io_and_the_packages_stay_importable():
    out = subprocess.run(
        [sys.executable, "-c", LEAN], capture_output=True, text=True, timeout=120, check=True
    )
    got = json.loads(out.stdout)
    assert got["skipped"] == {"pyarrow": False, "numpy": False}
    assert got["pyarrow"]  # imported fine once papermill was in
    # papermill fell back to its "missing dependency" stub for HDFS only; S3 is the real one
    assert got["stubs"] == {"hdfs": "missing_dep", "s3": "S3"}
