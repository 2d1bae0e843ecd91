"""Tell the channel a run from an alert has finished: runbook, verdict line, bundle.

The incoming-webhook URL (Slack or anything that takes ``{"text": ...}``) is read from the
environment (``OPSLIB_SERVE_NOTIFY_URL``) and never from a parameter or the routes file: the
URL is a credential. A notification that cannot be delivered is logged, never retried forever
and never fails the run.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request

from opslib.core import runtime

NOTIFY_ENV = runtime.SERVE_NOTIFY_URL_ENV
log = logging.getLogger("opslib.serve")


def message(
    *, runbook: str, alert: str, status: str, exit_code: int, verdict: str, bundle: str
) -> str:
    lines = [f"opslib: {runbook} (dry run) for alert {alert or '?'}: {status} (exit {exit_code})"]
    if verdict:
        lines.append(verdict)
    if bundle:
        lines.append(f"evidence: {bundle}")
    return "\n".join(lines)


def notify(text: str, *, url: str | None = None, timeout_s: float = 5.0) -> bool:
    """POST ``{"text": text}`` to the webhook; False (logged) when unset or undeliverable."""
    url = url if url is not None else os.environ.get(NOTIFY_ENV, "")
    if not url:
        return False
    req = urllib.request.Request(
        url,
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s):  # noqa: S310  operator-set URL
            return True
    except OSError as exc:
        log.warning("run notification not delivered: %s", exc)
        return False
