"""Redaction: the last line of defence that keeps secrets out of every evidence artifact.

Secrets never belong in parameters (the runner refuses them), but a notebook can still print
one: an exception message quoting a DSN, a debug dump of the environment, a header. So every
artifact of a bundle (notebook incl. the injected-parameters cell and papermill metadata,
HTML, record.json, attachments) is passed through one :class:`Redactor` before it is written.

What is redacted, replaced by ``[REDACTED]``:

- values of environment variables whose NAME contains SECRET, PASSWORD, TOKEN or KEY, when
  the value is at least 8 characters (shorter ones, like the sandbox's ``testing`` dummy
  credentials, are too common to count as secrets and would shred the evidence);
- passwords inside URLs (``scheme://user:PASSWORD@host``) and libpq conninfo
  (``password=...``);
- AWS access key ids (``AKIA``/``ASIA`` + 16) and secret access keys next to their name;
- PEM private key blocks;
- ``Authorization:`` header values and ``Bearer`` tokens.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "[REDACTED]"

#: Substrings of environment variable names whose values are secrets.
SECRET_NAME_PARTS = ("SECRET", "PASSWORD", "TOKEN", "KEY")
#: Shorter values are too common (``testing``, ``1``) to be treated as secrets.
MIN_SECRET_LEN = 8

# Output MIME types holding base64 binary: a regex over them could only corrupt the image.
_BINARY_MIMES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})

# (pattern, replacement, literals) for secret-shaped strings, applied in order. Every match of
# a pattern contains one of its literals (lower case: the pattern ignores case), so a string
# with none of them is skipped without running the pattern: on a 6 MB redrive journal that is
# 20 ms of substring checks instead of 1.1 s of regular expressions (see Redactor.text).
_PATTERNS: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    # PEM private key blocks (RSA, EC, OPENSSH, ENCRYPTED, plain PKCS#8).
    (
        re.compile(
            r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
            re.DOTALL,
        ),
        MASK,
        ("PRIVATE KEY-----",),
    ),
    # scheme://user:password@host  -> keep user and host, mask the password.
    (
        re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/@:'\"]*:)([^\s/@'\"]+)(@)"),
        rf"\1{MASK}\3",
        ("://",),
    ),
    # libpq conninfo / ini style: password=secret, password = 'sec ret', "password": "x"
    (
        re.compile(
            r"""(?i)(\bpass(?:word|wd)?["']?\s*[=:]\s*)('(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|[^\s'",;)}\]]+)"""
        ),
        rf"\1{MASK}",
        ("pass",),
    ),
    # AWS secret access key next to its name.
    (
        re.compile(r"""(?i)(aws_secret_access_key["']?\s*[=:]\s*["']?)[A-Za-z0-9/+=]{40}"""),
        rf"\1{MASK}",
        ("aws_secret_access_key",),
    ),
    # AWS access key ids (long-term AKIA, temporary ASIA): an identifier, not a secret, shown
    # the way the IAM console and incident notes do, AKIA...XYZW, so a credential-leak
    # investigation can tell its key from the others without the id being in the evidence.
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{12}([A-Z0-9]{4})\b"), r"\1...\2", ("AKIA", "ASIA")),
    # Authorization header values (whole rest of the line / quoted value).
    (
        re.compile(r"""(?i)(\bauthorization["']?\s*[:=]\s*["']?)[^\r\n"']+"""),
        rf"\1{MASK}",
        ("authorization",),
    ),
    # Bearer tokens anywhere.
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1{MASK}", ("bearer",)),
]


def _may_match(pattern: re.Pattern[str], literals: tuple[str, ...], s: str, lower: str) -> bool:
    """Whether ``s`` holds one of ``pattern``'s literals: ``lower`` is ``s.lower()`` for an
    ASCII string (where ignoring case means exactly that) and "" otherwise, which runs every
    pattern (Unicode case rules let a non-ASCII letter match an ASCII one: ``ſ`` is ``s``)."""
    if not lower:
        return True
    text = lower if pattern.flags & re.IGNORECASE else s
    return any(lit in text for lit in literals)


def secret_env_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-named environment variables (length >= 8), longest first."""
    env = os.environ if environ is None else environ
    values = {
        v
        for k, v in env.items()
        if v and len(v) >= MIN_SECRET_LEN and any(p in k.upper() for p in SECRET_NAME_PARTS)
    }
    return sorted(values, key=len, reverse=True)


class Redactor:
    """Replaces known secret values and secret-shaped strings with ``[REDACTED]``.

    Build one per run from every environment the run touched (the runner's and the kernel's),
    then apply it to each artifact: :meth:`text` for strings, :meth:`obj` for JSON-like
    structures (a notebook, a record), which walks every string so that JSON escaping cannot
    hide a secret from the patterns.
    """

    def __init__(
        self,
        environs: Iterable[Mapping[str, str]] | None = None,
        extra_values: Iterable[str] = (),
    ) -> None:
        envs = list(environs) if environs is not None else [os.environ]
        values: set[str] = set()
        for env in envs:
            values.update(secret_env_values(env))
        values.update(v for v in extra_values if v and len(v) >= MIN_SECRET_LEN)
        self.values = sorted(values, key=len, reverse=True)
        self._values_re = (
            re.compile("|".join(re.escape(v) for v in self.values)) if self.values else None
        )

    def text(self, s: str) -> str:
        """Redact one string."""
        if not s:
            return s
        if self._values_re is not None:
            s = self._values_re.sub(MASK, s)
        lower = s.lower() if s.isascii() else ""
        for pattern, repl, literals in _PATTERNS:
            if _may_match(pattern, literals, s, lower):
                s, n = pattern.subn(repl, s)
                if n:
                    lower = s.lower() if s.isascii() else ""
        return s

    def obj(self, value: Any) -> Any:
        """Redact every string inside a JSON-like structure (returns a new structure)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            out = {}
            for k, v in value.items():
                if k in _BINARY_MIMES and isinstance(v, str):
                    out[k] = v
                else:
                    out[self.text(k) if isinstance(k, str) else k] = self.obj(v)
            return out
        if isinstance(value, list | tuple):
            return [self.obj(v) for v in value]
        return value

    def notebook(self, nb: Any) -> Any:
        """A redacted copy of a notebook (dict or NotebookNode) as a NotebookNode."""
        import nbformat

        return nbformat.from_dict(self.obj(nb))

    def bytes(self, data: bytes) -> bytes:
        """Redact a file's content when it is UTF-8 text; binary content is returned unchanged."""
        try:
            s = data.decode("utf-8")
        except UnicodeDecodeError:
            return data
        return self.text(s).encode("utf-8")


#: File in the run's staging dir (OPSLIB_RUN_DIR, private, deleted after the run) listing secret
#: values a notebook met at run time; the runner adds them to the bundle's Redactor.
SECRETS_FILE = ".redact-values.jsonl"

_REGISTERED: set[str] = set()


def register_secret(value: str) -> str:
    """Mark a value fetched at run time (a secret read from Secrets Manager, a token) as secret.

    From then on :func:`redact_text` masks it in this kernel, and the runner masks it in every
    artifact of the bundle (the value is passed through the run's private staging dir, never
    through the notebook's outputs). Returns ``value`` unchanged so it can wrap the fetch.
    """
    if isinstance(value, str) and len(value) >= MIN_SECRET_LEN and value not in _REGISTERED:
        _REGISTERED.add(value)
        run_dir = os.environ.get("OPSLIB_RUN_DIR")
        if run_dir:
            import json

            path = os.path.join(run_dir, SECRETS_FILE)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(value) + "\n")
    return value


def registered_secrets(run_dir: str | os.PathLike[str]) -> list[str]:
    """Values registered by a run's notebook (read by the runner from the staging dir)."""
    import json

    path = os.path.join(os.fspath(run_dir), SECRETS_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except FileNotFoundError:
        return []


def redact_text(s: str, environ: Mapping[str, str] | None = None) -> str:
    """Redact one string with the current environment's secrets: for notebooks showing message bodies."""
    return Redactor([os.environ if environ is None else environ], extra_values=_REGISTERED).text(s)


#: an access key id as the redactor leaves it (``AKIA...XYZW``)
MASKED_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)\.\.\.[A-Z0-9]{4}\b")


def was_redacted(value: str) -> bool:
    """Whether ``value`` (read back from evidence) lost something to the redactor."""
    return isinstance(value, str) and (MASK in value or bool(MASKED_KEY_ID.search(value)))


def find_secret(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Name the kind of secret carried by ``value`` ("" when none): used to refuse parameters."""
    if not isinstance(value, str) or not value:
        return ""
    checks = [
        (re.compile(r"(?i)(?:^|[\s;?&])password\s*="), "a password in a conninfo (password=...)"),
        (
            re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/@:]*:[^\s/@]+@"),
            "a password in a URL (user:pass@)",
        ),
        (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), "an AWS access key id"),
        (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"), "a PEM private key"),
        (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"), "a bearer token"),
    ]
    for pattern, what in checks:
        if pattern.search(value):
            return what
    for secret in secret_env_values(environ):
        if secret in value:
            return "the value of a secret environment variable"
    return ""
