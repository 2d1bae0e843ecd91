"""One exception tree for opslib.

Every error says what went wrong and what to do next, because the reader is an on-call
engineer in the middle of an incident. Errors per region/queue/namespace are collected into
results as findings (see :mod:`opslib.core.findings`), not raised, so the rest of a runbook goes on.
"""

from __future__ import annotations


class OpslibError(Exception):
    """Raised when opslib cannot do what was asked; the message says what to do next."""

    exit_code = 1


class BadInputError(OpslibError):
    """Raised when a parameter or argument is invalid; nothing has been changed."""

    exit_code = 2


class SecretInParameterError(BadInputError):
    """Raised when a parameter value carries a secret (password, key); secrets never go in parameters."""


class UnknownRunbookError(BadInputError):
    """Raised when a runbook name or path does not resolve to a notebook with a parameters cell."""


class PreflightError(BadInputError):
    """Raised when a read-only preflight check refuses a change (target exists, time out of window, ...)."""


class NotFoundError(BadInputError):
    """Raised when a named resource (queue, cluster, table, database) does not exist."""


class ApprovalError(OpslibError):
    """Raised when a change is applied without a valid approval for exactly that plan."""


class ClientConfigError(OpslibError):
    """Raised when credentials, endpoints or connection settings are missing or unusable."""


class SandboxError(OpslibError):
    """Raised when the local sandbox cannot be started, reached or stopped."""


class EvidenceError(OpslibError):
    """Raised when an evidence bundle cannot be written, read, or fails verification."""


class RunbookTimeoutError(OpslibError):
    """Raised when a run or a bounded wait exceeds its time limit; the message says what exists now."""


class AccessDeniedError(OpslibError):
    """Raised when an API refuses the caller (IAM, SCP, RBAC); the message names the permission to ask for."""


class ThrottledError(OpslibError):
    """Raised when an API keeps throttling after the client's own retries; try later or slow down."""


class ConflictError(OpslibError):
    """Raised when the target is in a state that forbids the call (in use, being modified, exists)."""


class UnsupportedError(OpslibError):
    """Raised when an endpoint does not offer an API (an emulator, a partition, an old engine)."""


class RestoreFailedError(OpslibError):
    """Raised when an approved restore step failed; the message says which, why, and what exists now."""


class PitrRecoveryError(OpslibError):
    """Raised when a restored PostgreSQL server stops or fails during recovery; the message carries its log tail."""


class MissingExtraError(BadInputError):
    """Raised when a feature needs an optional extra that is not installed; the message names the install command."""


class PlanChangedError(BadInputError):
    """Raised when an approved run computes a plan whose digest is not the one approved; nothing applied."""


class TwoPersonRuleError(BadInputError):
    """Raised when a change needs more distinct approvers than it has (the two-person rule); nothing applied."""
