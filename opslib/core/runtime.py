"""Runtime facts every layer may ask: are we headless, what time is it (UTC), who is clicking."""

from __future__ import annotations

import datetime as _dt
import getpass
import os

HEADLESS_ENV = "OPSLIB_HEADLESS"

#: the alert receiver's secrets (opslib.serve reads them from its environment, never a flag):
#: the senders' webhook tokens and HMAC secrets, and the chat webhook URL (its path is a token)
SERVE_ALERTMANAGER_TOKENS_ENV = "OPSLIB_SERVE_ALERTMANAGER_TOKENS"
SERVE_PAGERDUTY_SECRETS_ENV = "OPSLIB_SERVE_PAGERDUTY_SECRETS"
SERVE_NOTIFY_URL_ENV = "OPSLIB_SERVE_NOTIFY_URL"
#: what the runner removes from every kernel's environment, with the signing key's path
SERVE_SECRET_ENVS = (
    SERVE_ALERTMANAGER_TOKENS_ENV,
    SERVE_PAGERDUTY_SECRETS_ENV,
    SERVE_NOTIFY_URL_ENV,
)


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
