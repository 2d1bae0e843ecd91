"""Runtime facts every layer may ask: are we headless, what time is it (UTC), who is clicking."""

from __future__ import annotations

import datetime as _dt
import getpass
import os

HEADLESS_ENV = "OPSLIB_HEADLESS"


def utcnow_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def is_headless() -> bool:
    """True under ``opslib run``/papermill/nbval (the runner and test harness set OPSLIB_HEADLESS)."""
    if os.environ.get(HEADLESS_ENV):
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    ip = get_ipython()
    return ip is None or "IPKernelApp" not in getattr(ip, "config", {})


def interactive_user() -> str:
    """The approver for a button click: the JupyterHub user where present, else the OS user."""
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()
