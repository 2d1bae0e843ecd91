"""The redrive journal: append-only JSON lines, one ``write(2)`` per batch, and its reader.

The journal is the audit trail of a move: ``sending`` is written before each
SendMessageBatch, ``sent`` (with the new ids) after it, ``deleted`` after the
DeleteMessageBatch. A ``sending`` or ``sent`` line without a ``deleted`` line is a message that
may be in both queues (:func:`journal_open_ids`). The path is given by the caller (the runbook
puts it in the run's evidence attachments).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["Journal", "journal_open_ids"]


class Journal:
    """Append-only JSON lines, one ``write(2)`` per batch, so a killed run leaves a usable log.

    The file is opened ``O_APPEND`` and each batch's lines go out in a single unbuffered
    ``os.write``: the kernel places every write at the end of the file as a whole, so the
    worker processes of one move can append to the same journal without interleaving lines,
    and nothing sits in a user-space buffer when the process is killed. No path: writes
    nothing.
    """

    def __init__(self, path: Path | str | None) -> None:
        self.path = str(path) if path else ""
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if path else -1

    def write(self, records: list[dict[str, Any]]) -> None:
        if self._fd < 0 or not records:
            return
        ts = round(time.time(), 3)
        text = "".join(json.dumps({"ts": ts, **r}, separators=(",", ":")) + "\n" for r in records)
        data = text.encode("utf-8")
        with self._lock:
            while data:  # a regular file takes it all at once; loop only on a short write
                data = data[os.write(self._fd, data) :]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def journal_open_ids(path: Path | str) -> set[str]:
    """Source ids a (possibly interrupted) run may have copied without deleting from the DLQ.

    Reads a redrive journal: ids in a ``sending`` or ``sent`` line with no ``deleted`` line.
    After a killed run, these are the only messages that can be in both queues; audit them
    (or delete them from the DLQ) before concluding a redrive.
    """
    touched: set[str] = set()
    deleted: set[str] = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:  # a line cut by the kill: its batch is covered by "sending"
                continue
            ev = rec.get("event")
            if ev == "sending":
                touched.update(rec.get("source_ids", []))
            elif ev == "sent":
                touched.add(rec["source_id"])
            elif ev == "deleted":
                deleted.add(rec["source_id"])
    return touched - deleted
